package server

// BeginDrain starts the drain of s's streams without an HTTP server, for tests that call the
// handler directly inside a testing/synctest bubble.
func BeginDrain(s *Server) { s.beginDrain() }
