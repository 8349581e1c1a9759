package sqlite

// WALPath is the WAL file the checkpointer measures.
func WALPath(s *Store) string { return s.ckpt.walPath }
