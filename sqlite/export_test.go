package sqlite

// WALPath is the WAL file the checkpointer measures.
func WALPath(s *Store) string { return s.ckpt.walPath }

// WriterSynchronous is PRAGMA synchronous as the write pool's connections run it (1 NORMAL,
// 2 FULL, 3 EXTRA).
func WriterSynchronous(s *Store) (int, error) {
	var level int
	err := s.writer.QueryRow(`PRAGMA synchronous`).Scan(&level)
	return level, err
}
