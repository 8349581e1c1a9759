package server

import (
	"net/netip"
	"strings"
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
