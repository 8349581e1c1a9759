package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// pprofServer serves the runtime profiles on a listener of their own, never on the public one:
// profiles reveal internals and cost CPU, so they are reachable only where the operator says.
type pprofServer struct {
	ln       net.Listener
	http     *http.Server
	serveErr chan error
}

func openPprof(addr string, logger *slog.Logger) (*pprofServer, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof: listen on %s: %w", addr, err)
	}
	p := &pprofServer{
		ln: ln,
		http: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		serveErr: make(chan error, 1),
	}
	go func() { p.serveErr <- p.http.Serve(ln) }()
	return p, nil
}

// URL is the base URL of the profiles.
func (p *pprofServer) URL() string { return "http://" + p.ln.Addr().String() + "/debug/pprof/" }

// Close stops the listener and cuts profiles in progress, then waits for Serve to return.
func (p *pprofServer) Close() error {
	err := p.http.Close()
	if serr := <-p.serveErr; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("pprof: %w", err)
	}
	return nil
}
