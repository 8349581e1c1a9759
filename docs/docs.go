// Package docs embeds the deployment guide, so that the tools testing the documented set-up
// (the cluster tests, ordercast check) run the configuration a reader copies, not a copy of it.
package docs

import _ "embed"

// Deploy is docs/deploy.md.
//
//go:embed deploy.md
var Deploy []byte
