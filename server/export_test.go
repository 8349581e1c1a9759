package server

import (
	"log"
	"net/netip"
	"time"

	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/stream"
)

// BeginDrain starts the drain of s's streams without an HTTP server, for tests that call the
// handler directly inside a testing/synctest bubble.
func BeginDrain(s *Server) { s.beginDrain() }

// SetPartyBacklog sets how far behind a party stream may be and still be sent the events it
// missed rather than a fresh snapshot (stream.Config.PartyBacklog). Call it before Handler.
func SetPartyBacklog(s *Server, n int) { s.partyBacklog = n }

// StreamObserver returns what s's stream engine reports to.
func StreamObserver(s *Server) stream.Observer { return s.engineObserver() }

// ErrorLog returns the logger s's http.Server reports its own errors to.
func ErrorLog(s *Server) *log.Logger { return s.httpErrorLog() }

// The request bodies, for the decoders' fuzz targets.
type (
	CreateOrderRequest = api.CreateOrderRequest
	SetStatusRequest   = api.SetStatusRequest
)

// Unexported parsers the external tests and fuzz targets drive directly.
var (
	RedactTokens     = redactTokens
	Redact           = redact
	DecodeJSON       = decodeJSON
	ParseLastEventID = func(v string) (int64, bool, error) { return parseLastEventID(api.HeaderLastEventID, v) }
)

// ClientsAfterOverflow fills a client table with its bound of clients, all seen just now, adds
// one more address, and returns how many clients the table then holds.
func ClientsAfterOverflow() int {
	var t clientTable
	now := time.Now()
	for i := range DefaultMaxClients + 1 {
		t.get(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), Limits{}, now)
	}
	return len(t.m)
}

// APIRoutes returns the route patterns of s's API (apiRoutes).
func APIRoutes(s *Server) []string {
	var patterns []string
	for _, rt := range s.apiRoutes() {
		patterns = append(patterns, rt.pattern)
	}
	return patterns
}
