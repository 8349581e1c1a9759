package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/ordercast/ordercast"
)

// LoopbackHost reports whether host, a name or an IP address without a port (an IPv6 address
// with or without its brackets), can only mean this machine: localhost and its subdomains
// (RFC 6761 reserves them for loopback), 127.0.0.0/8 and ::1. An empty host, which a listen
// address uses for every interface, is not loopback.
func LoopbackHost(host string) bool {
	host = strings.TrimSuffix(host, ".") // the fully qualified spelling, "localhost."
	if host == "" {
		return false
	}
	lower := strings.ToLower(host)
	if lower == "localhost" || strings.HasSuffix(lower, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return err == nil && ip.Unmap().IsLoopback()
}

// NamesThisMachine reports whether r's Host, with or without its port, can only mean this machine
// (LoopbackHost): what a name that a DNS rebinding points at 127.0.0.1 never does.
func NamesThisMachine(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host // no port
	}
	return LoopbackHost(host)
}

// loopbackHostsOnly refuses, with LoopbackHostsOnly, a request whose Host names anything but this
// machine, before anything else reads it: 421 Misdirected Request, since the server is not the
// one for that name (RFC 9110 §15.5.20), which is the truth of a rebound name, where 403 would
// speak of a credential the client lacks. The API answers its JSON error; the pages a line of
// text.
func (s *Server) loopbackHostsOnly(next http.Handler) http.Handler {
	if !s.LoopbackHostsOnly {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if NamesThisMachine(r) {
			next.ServeHTTP(w, r)
			return
		}
		const why = "this server answers only for localhost, 127.0.0.1 and [::1]; open it under one of those names"
		if r.URL.Path == patAPIRoot || strings.HasPrefix(r.URL.Path, patAPISubtree) {
			s.writeError(w, r, ordercast.Errorf(ordercast.EMisdirected, "%s", why))
			return
		}
		http.Error(w, "421 Misdirected Request: "+why, http.StatusMisdirectedRequest)
	})
}
