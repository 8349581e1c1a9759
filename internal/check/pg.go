package check

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgServer is the PostgreSQL the cluster runs on: one the checker started in a temp dir (and may
// restart at will), or an existing server given with --db, restarted only when allowed.
type pgServer struct {
	own      bool
	binDir   string
	dir      string // own: the temp dir holding data/ and the socket
	port     int
	cred     *syscall.Credential
	p        *proc
	procs    *procs
	adminURL string // a superuser connection to the maintenance database
	dbName   string // the database the checker created for the run
	// restartable: own, or external with --allow-pg-restart (restarted with pg_ctl on its data dir)
	restartable bool
	dataDir     string // external: the server's data_directory
	restarts    int
}

// findPGBin returns the directory of initdb/postgres: the newest /usr/lib/postgresql/*/bin, or
// the one initdb is found in on PATH.
func findPGBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	p, err := exec.LookPath("initdb")
	if err != nil {
		return "", fmt.Errorf("PostgreSQL binaries not found in /usr/lib/postgresql/*/bin or on PATH (apt-get install postgresql): %w", err)
	}
	return filepath.Dir(p), nil
}

// startOwnPG creates a throwaway cluster (initdb, trust on loopback only) on a free loopback
// port and starts it. As root it runs as the postgres OS user, since initdb refuses root.
func startOwnPG(ctx context.Context, r *procs) (*pgServer, error) {
	bin, err := findPGBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ordercast-check-pg-")
	if err != nil {
		return nil, err
	}
	s := &pgServer{own: true, binDir: bin, dir: dir, procs: r, restartable: true}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root, PostgreSQL needs the postgres OS user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("chown %s: %w", dir, err)
		}
	}
	if s.port, err = freePort(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-U", "postgres",
		"-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	initdb.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	s.adminURL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
	if err := s.start(ctx); err != nil {
		return nil, errors.Join(err, s.close())
	}
	return s, nil
}

// start runs postgres in the foreground as a child, listening on loopback only.
func (s *pgServer) start(ctx context.Context) error {
	cmd := exec.Command(filepath.Join(s.binDir, "postgres"), "-D", filepath.Join(s.dir, "data"),
		"-p", strconv.Itoa(s.port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+s.dir,
		// Durability against an OS crash is not what is tested: a restart here is a process
		// restart, after which the page cache still holds every committed write.
		"-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200",
		"-c", "shared_buffers=64MB", "-c", "log_min_messages=warning")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	logf, err := os.OpenFile(filepath.Join(s.dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o666)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	p, err := s.procs.start("postgres", cmd)
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	s.p = p
	return s.waitUp(ctx, 60*time.Second)
}

// waitUp polls until the server accepts a connection, for at most d.
func (s *pgServer) waitUp(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		if s.p != nil && s.p.exited() {
			log, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
			return fmt.Errorf("postgres exited: %s", tail(log, 2000))
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, s.adminURL)
		if err == nil {
			_, err = conn.Exec(cctx, "SELECT 1")
			_ = conn.Close(cctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		last = err
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(50 * time.Millisecond) // polling the server's start with a deadline
	}
	return fmt.Errorf("PostgreSQL not accepting connections within %s: %w", d, last)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// useExternalPG checks the server at u and whether it may be restarted.
func useExternalPG(ctx context.Context, u string, allowRestart bool, r *procs) (*pgServer, error) {
	if err := loopbackOnly(u); err != nil {
		return nil, err
	}
	s := &pgServer{adminURL: u, procs: r}
	if allowRestart {
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			return nil, fmt.Errorf("connect %s: %w", redactURL(u), err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, "SHOW data_directory").Scan(&s.dataDir); err != nil {
			return nil, fmt.Errorf("--allow-pg-restart needs a superuser to find the data directory: %w", err)
		}
		if s.binDir, err = findPGBin(); err != nil {
			return nil, err
		}
		if os.Geteuid() == 0 {
			if pu, err := user.Lookup("postgres"); err == nil {
				uid, _ := strconv.Atoi(pu.Uid)
				gid, _ := strconv.Atoi(pu.Gid)
				s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
			}
		}
		s.restartable = true
	}
	return s, nil
}

// describe says which PostgreSQL this is, and whether and how the checker restarts it.
func (s *pgServer) describe() string {
	if s.own {
		return fmt.Sprintf("own throwaway PostgreSQL (%s/postgres, data in %s, 127.0.0.1:%d, pid %d); restarts it", s.binDir, s.dir, s.port, s.p.pid())
	}
	if s.restartable {
		return fmt.Sprintf("existing PostgreSQL at %s; restarts it with pg_ctl on %s (--allow-pg-restart)", redactURL(s.adminURL), s.dataDir)
	}
	return fmt.Sprintf("existing PostgreSQL at %s; never restarts it (no --allow-pg-restart)", redactURL(s.adminURL))
}

// loopbackOnly refuses a server outside 127.0.0.0/8 (or a local socket): the checker kills,
// stops and floods what it runs against, and must never reach beyond this machine.
func loopbackOnly(u string) error {
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		return fmt.Errorf("--db: %w", err)
	}
	hosts := []string{cfg.Host}
	for _, fb := range cfg.Fallbacks {
		hosts = append(hosts, fb.Host)
	}
	for _, h := range hosts {
		if strings.HasPrefix(h, "/") || h == "localhost" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil && ip.To4() != nil && ip.To4()[0] == 127 {
			continue
		}
		return fmt.Errorf("--db host %q is not on 127.0.0.0/8: the checker only runs against this machine", h)
	}
	return nil
}

func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparseable URL)"
	}
	return p.Redacted()
}

// createDB creates the run's database and returns its URL.
func (s *pgServer) createDB(ctx context.Context) (string, error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	s.dbName = "ordercast_check_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, s.adminURL)
	if err != nil {
		return "", fmt.Errorf("connect %s: %w", redactURL(s.adminURL), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+s.dbName); err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	u, err := url.Parse(s.adminURL)
	if err != nil {
		return "", err
	}
	u.Path = "/" + s.dbName
	return u.String(), nil
}

// terminateListeners ends the nodes' LISTEN connections (named "ordercast-listen …" by the
// nodes) in the run's database, and returns how many it ended: a backend that was already gone
// (pg_terminate_backend false) was ended by nothing here.
func (s *pgServer) terminateListeners(ctx context.Context) (int, error) {
	conn, err := pgx.Connect(ctx, s.adminURL)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = $1 AND application_name LIKE 'ordercast-listen%'`, s.dbName).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("terminate listeners: %w", err)
	}
	return n, nil
}

// restart stops and starts the server: a fast shutdown, or an immediate one (a crash, with
// recovery on start) when crash is set.
func (s *pgServer) restart(ctx context.Context, crash bool) error {
	s.restarts++
	if s.own {
		sig := syscall.SIGINT // fast shutdown
		if crash {
			sig = syscall.SIGQUIT // immediate shutdown
		}
		if err := s.p.stop(sig, 30*time.Second); err != nil {
			return err
		}
		return s.start(ctx)
	}
	if !s.restartable {
		return errors.New("not allowed to restart this PostgreSQL")
	}
	mode := "fast"
	if crash {
		mode = "immediate"
	}
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, "pg_ctl"), "-D", s.dataDir, "restart", "-m", mode, "-w", "-t", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl restart: %w: %s", err, out)
	}
	return s.waitUp(ctx, 60*time.Second)
}

// close drops the run's database, and stops and removes an own server.
func (s *pgServer) close() error {
	var errs []error
	if s.dbName != "" && (s.p == nil || !s.p.exited()) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		conn, err := pgx.Connect(ctx, s.adminURL)
		if err == nil {
			_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+s.dbName+" WITH (FORCE)")
			_ = conn.Close(ctx)
		}
		cancel()
		if err != nil && !s.own {
			errs = append(errs, fmt.Errorf("drop database %s: %w", s.dbName, err))
		}
	}
	if s.own {
		if s.p != nil {
			if err := s.p.stop(syscall.SIGQUIT, 20*time.Second); err != nil {
				errs = append(errs, err)
			}
		}
		if strings.HasPrefix(filepath.Base(s.dir), "ordercast-check-pg-") {
			errs = append(errs, os.RemoveAll(s.dir))
		}
	}
	return errors.Join(errs...)
}
