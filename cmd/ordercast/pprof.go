package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/ordercast/ordercast/server"
)

// pprofServer serves the runtime profiles on a listener of their own, never on the public one:
// profiles reveal internals and cost CPU, so they are reachable only where the operator says.
type pprofServer struct {
	ln       net.Listener
	http     *http.Server
	serveErr chan error
}

// openPprof serves the profiles on addr. Not the command line (pprof.Cmdline): it holds --secret
// or a database password when they were given as flags, which no profile needs. On a loopback
// address only requests that name this machine are answered: a page of another site whose name
// a DNS rebinding points at 127.0.0.1 reaches the port from an operator's browser, and would
// read the heap, where secrets live too.
func openPprof(addr string, logger *slog.Logger) (*pprofServer, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
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
			Handler:           thisMachineOnly(addr, mux),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		serveErr: make(chan error, 1),
	}
	go func() { p.serveErr <- p.http.Serve(ln) }()
	return p, nil
}

// thisMachineOnly answers, when addr is a loopback address, only the requests whose Host names
// this machine (server.NamesThisMachine), and others 421 as the demo does; elsewhere the operator
// chose who reaches the address.
func thisMachineOnly(addr string, next http.Handler) http.Handler {
	if !loopbackAddr(addr) {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !server.NamesThisMachine(r) {
			http.Error(w, "421 Misdirected Request: open the profiles under localhost, 127.0.0.1 or [::1]", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
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
