package main

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/ordercast/ordercast/internal/sidelisten"
	"github.com/ordercast/ordercast/server"
)

// openPprof serves the runtime profiles on addr, a listener of their own, never the public one:
// profiles reveal internals and cost CPU, so they are reachable only where the operator says.
// Not the command line (pprof.Cmdline): it holds --secret or a database password when they were
// given as flags, which no profile needs. On a loopback address only requests that name this
// machine are answered: a page of another site whose name a DNS rebinding points at 127.0.0.1
// reaches the port from an operator's browser, and would read the heap, where secrets live too.
// No write timeout: a CPU profile or a trace answers after the seconds it was asked to run.
func openPprof(addr string, logger *slog.Logger) (*sidelisten.Server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	p, err := sidelisten.Listen("pprof", addr, &http.Server{
		Handler:           thisMachineOnly(addr, mux),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	})
	if err != nil {
		return nil, err
	}
	p.Serve()
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

// pprofURL is the base URL of the profiles p serves.
func pprofURL(p *sidelisten.Server) string { return "http://" + p.Addr().String() + "/debug/pprof/" }
