package server

import (
	"log"

	"github.com/ordercast/ordercast/api"
)

// BeginDrain starts the drain of s's streams without an HTTP server, for tests that call the
// handler directly inside a testing/synctest bubble.
func BeginDrain(s *Server) { s.beginDrain() }

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
	DecodeJSON       = decodeJSON
	ParseLastEventID = parseLastEventID
)
