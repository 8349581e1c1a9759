package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ForgetNodesAfter is how long a row of cluster_nodes stays unseen before the next node to
// announce itself deletes it: the row of a node that was killed, and never deleted its own.
const ForgetNodesAfter = time.Hour

// NodeSettings is a node's row of cluster_nodes: the settings it announced (JSON, the caller's to
// read), and when it last did, on the database's clock.
type NodeSettings struct {
	Node     string
	SeenAt   time.Time
	Settings json.RawMessage
}

// Node returns the id of this store's node: random, made at Open, the same in its notices of
// positions and in its row of cluster_nodes.
func (s *Store) Node() string { return s.node }

// AnnounceSettings writes this node's row of cluster_nodes, settings (a JSON object) seen now,
// and returns the other nodes' rows seen within live, in one round trip. Rows unseen for
// ForgetNodesAfter are deleted on the way. Now is the database's clock, so that the nodes'
// clocks need not agree.
func (s *Store) AnnounceSettings(ctx context.Context, settings []byte, live time.Duration) ([]NodeSettings, error) {
	ctx, cancel := context.WithTimeout(ctx, s.ReadTimeout)
	defer cancel()
	// The outer SELECT reads the snapshot from before the statement's own writes: this node's
	// row is left out anyway, and a row deleted here is one long past live.
	rows, err := s.pool.Query(ctx, `
		WITH announced AS (
			INSERT INTO cluster_nodes (node, seen_at, settings) VALUES ($1, now(), $2)
			ON CONFLICT (node) DO UPDATE SET seen_at = excluded.seen_at, settings = excluded.settings
		), forgotten AS (
			DELETE FROM cluster_nodes WHERE seen_at < now() - make_interval(secs => $4) AND node <> $1
		)
		SELECT node, seen_at, settings FROM cluster_nodes
		WHERE node <> $1 AND seen_at > now() - make_interval(secs => $3)
		ORDER BY node`,
		s.node, string(settings), live.Seconds(), ForgetNodesAfter.Seconds())
	if err != nil {
		return nil, fmt.Errorf("postgres: announce settings: %w", err)
	}
	nodes, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (NodeSettings, error) {
		var n NodeSettings
		var raw []byte
		err := r.Scan(&n.Node, &n.SeenAt, &raw)
		n.Settings = raw
		return n, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: announce settings: %w", err)
	}
	return nodes, nil
}

// ForgetNode deletes this node's row of cluster_nodes, on a clean shutdown: the other nodes then
// no longer compare their settings with a node gone.
func (s *Store) ForgetNode(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.ReadTimeout)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `DELETE FROM cluster_nodes WHERE node = $1`, s.node); err != nil {
		return fmt.Errorf("postgres: forget node: %w", err)
	}
	return nil
}
