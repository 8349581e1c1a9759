// Package sidelisten serves what an operator reads beside the API (the metrics, the runtime
// profiles) on a listener of its own: the public listener never serves them, and the operator
// says who reaches the address. The caller's http.Server says what is served there and how
// (handler, timeouts, error log); this package owns the listener's life, one way for each.
package sidelisten

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
)

// Server is an http.Server on a listener of its own. Its methods do nothing on a nil *Server,
// so that a side listener the operator did not ask for needs no check at each use.
type Server struct {
	name     string // for errors: "metrics", "pprof"
	ln       net.Listener
	http     *http.Server
	serveErr chan error // made by Serve
}

// Listen listens on addr for srv, which Serve then starts answering there. Listening apart from
// serving lets a node refuse to start on an address in use before it serves anything.
func Listen(name, addr string, srv *http.Server) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen on %s: %w", name, addr, err)
	}
	return &Server{name: name, ln: ln, http: srv}, nil
}

// Addr is the address the server listens on (the port chosen for ":0").
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve starts answering on the listener, on a goroutine of its own; again, it does nothing.
func (s *Server) Serve() {
	if s == nil || s.serveErr != nil {
		return
	}
	s.serveErr = make(chan error, 1)
	go func() { s.serveErr <- s.http.Serve(s.ln) }()
}

// Shutdown stops the listener and waits for the requests in progress until ctx ends, then cuts
// them.
func (s *Server) Shutdown(ctx context.Context) error {
	if s == nil {
		return nil
	}
	if s.serveErr == nil {
		return s.Close()
	}
	if err := s.http.Shutdown(ctx); err != nil {
		return errors.Join(fmt.Errorf("%s: shut down: %w", s.name, err), s.Close())
	}
	return s.wait()
}

// Close stops the listener and cuts the requests in progress.
func (s *Server) Close() error {
	if s == nil {
		return nil
	}
	if s.serveErr == nil {
		// Never served: the http.Server does not know the listener.
		if err := s.ln.Close(); err != nil {
			return fmt.Errorf("%s: close listener: %w", s.name, err)
		}
		return nil
	}
	if err := s.http.Close(); err != nil {
		return errors.Join(fmt.Errorf("%s: close: %w", s.name, err), s.wait())
	}
	return s.wait()
}

// wait waits for Serve to return, once the server is shut down or closed. A second wait (Close
// after Shutdown) finds Serve long returned.
func (s *Server) wait() error {
	err, ok := <-s.serveErr
	if !ok {
		return nil
	}
	close(s.serveErr)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: serve: %w", s.name, err)
	}
	return nil
}
