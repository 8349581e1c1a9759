package api

import _ "embed" // for OpenAPI

// OpenAPI is the OpenAPI 3.1 description of the API under /v1/, which the server serves at
// RouteOpenAPI for an integrator's tools (client generators, request validators). It is kept
// true by tests rather than generated: its operations are the server's routes
// (server/openapi_test.go), its schemas hold the fields of this package's and ordercast's types
// (openapi_test.go), and the server's answers hold to them.
//
//go:embed openapi.json
var OpenAPI []byte
