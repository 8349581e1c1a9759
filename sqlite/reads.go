package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// reads runs the readers' queries as prepared statements, each prepared once per reader
// connection (database/sql keeps a statement's per-connection copies) instead of parsed again on
// every call: a stream's opening, a catch-up or a courier's orders spent most of their time in
// SQLite's parser (a scope read ~170 µs, of which the parse was the larger part). The queries are
// the package's own constants, so the set is small and fixed.
type reads struct {
	db    *sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func newReads(db *sql.DB) *reads { return &reads{db: db, stmts: make(map[string]*sql.Stmt)} }

// stmt returns query prepared on the readers. Preparing takes a reader connection from the
// pool, so it is done without the lock: a caller waiting for a connection (every reader busy)
// keeps its context, and never holds up the callers whose statements are ready.
func (r *reads) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st := r.cached(query); st != nil {
		return st, nil
	}
	st, err := r.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if had := r.stmts[query]; had != nil { // prepared meanwhile by another caller
		_ = st.Close()
		return had, nil
	}
	r.stmts[query] = st
	return st, nil
}

// cached returns query's statement if it has been prepared, or nil.
func (r *reads) cached(query string) *sql.Stmt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stmts[query]
}

// QueryContext runs query, prepared, on a reader connection.
func (r *reads) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := r.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// QueryRowContext runs query, prepared, on a reader connection. A *sql.Row cannot carry an
// error of ours: if the statement cannot be prepared, the query runs unprepared and its Row
// reports why.
func (r *reads) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := r.stmt(ctx, query)
	if err != nil {
		return r.db.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// in returns the queries of tx, a transaction on the readers, run as the prepared statements.
func (r *reads) in(tx *sql.Tx) txReads { return txReads{r: r, tx: tx} }

// txReads is reads within one read transaction.
type txReads struct {
	r  *reads
	tx *sql.Tx
}

// QueryContext runs query in the transaction: prepared when it has been (Store.Open prepares
// the transactions' queries), else unprepared. Never prepared here: that would take a second
// reader from the pool while the transaction holds one, and with every reader in such a
// transaction (party streams opening together after a restart) none would come back.
func (t txReads) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.r.cached(query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

// QueryRowContext runs query in the transaction, prepared when it has been (see QueryContext).
func (t txReads) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.r.cached(query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}

// close closes the statements; the readers' pool closes what they held on its connections.
func (r *reads) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var first error
	for q, st := range r.stmts {
		if err := st.Close(); err != nil && first == nil {
			first = fmt.Errorf("close statement: %w", err)
		}
		delete(r.stmts, q)
	}
	return first
}
