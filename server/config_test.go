package server_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/server"
)

// TestConfigValidate: DefaultConfig is valid; each setting out of range is reported as a
// *ordercast.SettingError named as its flag, which is how `ordercast serve` names it to the user.
func TestConfigValidate(t *testing.T) {
	if err := server.DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	for _, tc := range []struct {
		setting string
		change  func(*server.Config)
	}{
		{"heartbeat", func(c *server.Config) { c.Heartbeat = 0 }},
		{"retry", func(c *server.Config) { c.Retry = -time.Second }},
		{"stream-write-timeout", func(c *server.Config) { c.StreamWriteTimeout = 0 }},
		{"idempotency-ttl", func(c *server.Config) { c.IdempotencyTTL = 0 }},
		{"drain", func(c *server.Config) { c.DrainWindow = -time.Second }},
		{"stream-lifetime", func(c *server.Config) { c.StreamLifetime = -time.Minute }},
		{"max-body", func(c *server.Config) { c.MaxBodyBytes = 0 }},
		{"tls-cert", func(c *server.Config) { c.TLSCertFile = "c.pem" }},
		{"tls-key", func(c *server.Config) { c.TLSKeyFile = "k.pem" }},
		{"h2c", func(c *server.Config) { c.H2C, c.TLSCertFile, c.TLSKeyFile = true, "c.pem", "k.pem" }},
		{"max-streams", func(c *server.Config) { c.Limits.MaxStreams = -1 }},
		{"write-rate", func(c *server.Config) { c.Limits.WriteBurst = -1 }},
		{"metrics-addr", func(c *server.Config) { c.Addr, c.MetricsAddr = ":8080", ":8080" }},
	} {
		c := server.DefaultConfig()
		tc.change(&c)
		var se *ordercast.SettingError
		if err := c.Validate(); !errors.As(err, &se) || se.Setting != tc.setting {
			t.Errorf("%s: Validate() = %v, want a SettingError for %s", tc.setting, err, tc.setting)
		}
	}
}
