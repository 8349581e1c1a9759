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
		{"anon-write-rate", func(c *server.Config) { c.Limits.WriteRate, c.Limits.AnonWriteRate = 0, 5 }},
	} {
		c := server.DefaultConfig()
		tc.change(&c)
		var se *ordercast.SettingError
		if err := c.Validate(); !errors.As(err, &se) || se.Setting != tc.setting {
			t.Errorf("%s: Validate() = %v, want a SettingError for %s", tc.setting, err, tc.setting)
		}
	}
}

// TestConfigValidateDeployed: a node on the network refuses what a library user or a test may
// mean but no deployment does, each named as its flag; Validate takes those values, and
// ValidateDeployed refuses all that Validate refuses.
func TestConfigValidateDeployed(t *testing.T) {
	if err := server.DefaultConfig().ValidateDeployed(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	for _, tc := range []struct {
		setting string
		change  func(*server.Config)
		library bool // Validate takes it
	}{
		{"heartbeat", func(c *server.Config) { c.Heartbeat = 10 * time.Millisecond }, true},
		{"stream-write-timeout", func(c *server.Config) { c.StreamWriteTimeout = 100 * time.Millisecond }, true},
		{"retry", func(c *server.Config) { c.Retry = time.Hour }, true},
		{"read-header-timeout", func(c *server.Config) { c.ReadHeaderTimeout = 0 }, true},
		{"read-timeout", func(c *server.Config) { c.ReadTimeout = 0 }, true},
		{"idle-timeout", func(c *server.Config) { c.IdleTimeout = 0 }, true},
		{"max-header-bytes", func(c *server.Config) { c.MaxHeaderBytes = 100 }, true},
		{"heartbeat", func(c *server.Config) { c.Heartbeat = 0 }, false},
	} {
		c := server.DefaultConfig()
		tc.change(&c)
		if err := c.Validate(); (err == nil) != tc.library {
			t.Errorf("%s: Validate() = %v; want it to take the value: %v", tc.setting, err, tc.library)
		}
		var se *ordercast.SettingError
		if err := c.ValidateDeployed(); !errors.As(err, &se) || se.Setting != tc.setting {
			t.Errorf("%s: ValidateDeployed() = %v, want a SettingError for %s", tc.setting, err, tc.setting)
		}
	}
}
