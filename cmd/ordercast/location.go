package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/location"
	"github.com/ordercast/ordercast/postgres"
	"github.com/ordercast/ordercast/server"
)

// locationConfig is the couriers' positions flags.
type locationConfig struct {
	LocationFresh  time.Duration
	LocationMaxAge time.Duration
	LocationFrom   string
	LocationRate   float64
	LocationBurst  int
	NearbyRadius   float64
	LocationCoarse float64
	LocationStop   time.Duration
	LocationBatch  time.Duration
	// PrivacyRadius: see location.Tracker.PrivacyM.
	PrivacyRadius float64
	// LocationLegacyNotices: see postgres.LocationBus.LegacyNotices.
	LocationLegacyNotices bool

	Tracker     *location.Tracker
	LocationBus *postgres.LocationBus // nil with SQLite: positions stay in the process
}

func defaultLocation() locationConfig {
	return locationConfig{
		LocationFresh:  location.DefaultFresh,
		LocationMaxAge: ordercast.DefaultLocationMaxAge,
		LocationFrom:   string(ordercast.StatusOutForDelivery),
		LocationRate:   location.DefaultRate,
		LocationBurst:  location.DefaultBurst,
		NearbyRadius:   ordercast.DefaultETAModel.NearbyM,
		LocationCoarse: location.DefaultCoarseM,
		LocationStop:   location.DefaultStopAfter,
		LocationBatch:  postgres.DefaultLocationBatch,
		PrivacyRadius:  location.DefaultPrivacyM,
	}
}

// locationFlags declares the position flags; --location-interval is the server's setting
// (server.Config.LocationInterval, validated there) and binds to h.
func (c *locationConfig) locationFlags(fs *flag.FlagSet, h *server.Config) {
	fs.DurationVar(&h.LocationInterval, "location-interval", h.LocationInterval, "send each stream one courier position per order this often on average (one may come early); newer replace held-back ones (0: every one)")
	fs.DurationVar(&c.LocationFresh, "location-fresh", c.LocationFresh, "how long a courier position stays worth showing to a stream that opens later")
	fs.DurationVar(&c.LocationMaxAge, "location-max-age", c.LocationMaxAge, "oldest a posted position's at may be")
	fs.StringVar(&c.LocationFrom, "location-from", c.LocationFrom, "first `status` at which watchers see the courier: out_for_delivery, or an earlier stage, confirmed at the earliest, to show the way to the pickup")
	fs.Float64Var(&c.LocationRate, "location-rate", c.LocationRate, "positions per second one courier may post (0: no limit)")
	fs.IntVar(&c.LocationBurst, "location-burst", c.LocationBurst, "positions one courier may post at once")
	fs.Float64Var(&c.NearbyRadius, "nearby-radius", c.NearbyRadius, "distance from the drop-off, in `metres`, within which the courier is nearby")
	fs.Float64Var(&c.LocationCoarse, "location-coarse", c.LocationCoarse, "accuracy radius, in `metres`, past which a courier's fix is coarse: no speed sample, no point of the trail, and shown in place of a fine one only once that one is 10 s older")
	fs.DurationVar(&c.LocationStop, "location-stop-after", c.LocationStop, "an order shows its courier's position for at most this long after its last change (its pickup, a reassignment), so that an order nobody marked delivered does not share the courier's whereabouts for good (0: no bound)")
	fs.Float64Var(&c.PrivacyRadius, "location-privacy-radius", c.PrivacyRadius, "a courier carrying several customers' orders is shown to no other customer within this many `metres` of a customer's drop-off (nor, while it carries an order without one, at all), and for a while after that order ends (0: every order sees every position)")
	fs.DurationVar(&c.LocationBatch, "location-batch", c.LocationBatch, "cluster: gather positions this long before sending them to the other nodes in one notice")
	fs.BoolVar(&c.LocationLegacyNotices, "location-legacy-notices", c.LocationLegacyNotices, "cluster: also send positions in the older JSON, which every earlier version reads, so that nodes not upgraded yet show them during a rolling upgrade; turn off once every node runs this version")
}

// validateLocation checks the position flags: the tracker's own (location.Tracker.Validate,
// which names the flag), and --location-batch, which only a cluster's bus reads, so that a bad
// value fails on SQLite too rather than on the day the node joins a cluster.
func (c *locationConfig) validateLocation() error {
	if c.LocationBatch <= 0 {
		return fmt.Errorf("--location-batch must be positive, got %s", c.LocationBatch)
	}
	t := location.New(nil, nil)
	c.configureTracker(t)
	return t.Validate()
}

// configureTracker sets t's tunables from the flags.
func (c *locationConfig) configureTracker(t *location.Tracker) {
	t.Fresh, t.MaxAge = c.LocationFresh, c.LocationMaxAge
	t.From = ordercast.Status(c.LocationFrom)
	t.Rate, t.Burst = c.LocationRate, c.LocationBurst
	t.ETA.NearbyM = c.NearbyRadius
	t.CoarseM = c.LocationCoarse
	t.StopAfter = c.LocationStop
	t.PrivacyM = c.PrivacyRadius
}

// newTracker makes the tracker that takes positions in; it finds couriers' orders in m.Store,
// which is open by the time a position arrives.
func (m *Main) newTracker() *location.Tracker {
	t := location.New(m.Hub, mainAssignments{m})
	m.configureTracker(t)
	t.Logger = m.Logger.With("component", "location")
	return t
}

// mainAssignments reads couriers' orders from the store Main opened, which is set only after
// the tracker is made.
type mainAssignments struct{ m *Main }

func (a mainAssignments) CouriersOrders(ctx context.Context, courierIDs []string) (map[string][]ordercast.Order, error) {
	return a.m.Store.CouriersOrders(ctx, courierIDs)
}
