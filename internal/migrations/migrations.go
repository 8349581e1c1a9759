// Package migrations reads the numbered schema migrations that each store embeds, so that both
// stores name, order and check them the same way.
package migrations

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// ErrNewer is why a store refuses a database whose schema a later release migrated: this binary
// does not know that schema, and no restart of it changes that (the node exits ExitConfig, which
// its unit does not restart).
var ErrNewer = errors.New("the database's schema is newer than this binary's")

// Newer is the refusal of a database (what names it) at schema version applied, past known, the
// binary's last: an error that is ErrNewer (errors.Is).
func Newer(what string, applied, known int) error { return newerError{what, applied, known} }

type newerError struct {
	what           string
	applied, known int
}

func (e newerError) Error() string {
	return fmt.Sprintf("%s is at schema version %d, newer than this binary's %d: a later release migrated it; run that release, or a copy of the database from before the upgrade", e.what, e.applied, e.known)
}

func (e newerError) Is(target error) bool { return target == ErrNewer }

// ErrRefused is why a store could not migrate a database that refused a migration's SQL (a
// table of its name already there, a privilege missing, rows the change does not fit): the
// database is there and answered, and no restart changes its answer (the node exits ExitConfig,
// which its unit does not restart; restarted every two seconds, it ran the migration again each
// time). A database away, busy or out of space is no such refusal: a restart may well succeed.
var ErrRefused = errors.New("the database refused a migration")

// Refused wraps err, a migration's SQL that the database refused, as ErrRefused.
func Refused(err error) error { return fmt.Errorf("%w: %w", ErrRefused, err) }

// Migration is one numbered schema change from a file dir/NNN_name.up.sql.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Load returns the migrations in dir of fsys in version order. Names are checked here, so that a
// misnamed or duplicated file fails every start loudly instead of being skipped.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.up.sql"))
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	var ms []Migration
	seen := make(map[int]string)
	for _, p := range names {
		base := strings.TrimSuffix(path.Base(p), ".up.sql")
		num, name, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || version <= 0 || name == "" {
			return nil, fmt.Errorf("migration %s: name must be NNN_name.up.sql", p)
		}
		if prev, dup := seen[version]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, p, version)
		}
		seen[version] = p
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", p, err)
		}
		ms = append(ms, Migration{Version: version, Name: name, SQL: string(body)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	return ms, nil
}
