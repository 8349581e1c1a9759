package main

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/failurelog"
	"github.com/ordercast/ordercast/postgres"
)

// The cluster's settings check: each PostgreSQL node announces in cluster_nodes the settings its
// nodes must agree on, and warns (an ERROR line, ordercast_cluster_settings_mismatch) while a live
// node disagrees. It never refuses to start nor turns the node unready: a rolling change of a
// setting disagrees for a while by design, and an emergency change of the secret must not lock a
// cluster out because dead nodes' rows are still fresh.
const (
	// DefaultSettingsInterval is how often a node announces its settings and compares them.
	DefaultSettingsInterval = 30 * time.Second
	// DefaultSettingsLive is how recently a node must have announced itself to be compared with.
	DefaultSettingsLive = 2 * time.Minute
	// settingsWarnEvery bounds the warnings while cluster_nodes cannot be read or written.
	settingsWarnEvery = 10 * time.Minute
	// settingsForgetTimeout bounds the deletion of the node's row at shutdown, which a database
	// cut off would otherwise hold up by the store's ReadTimeout (10 s).
	settingsForgetTimeout = 2 * time.Second
)

// fingerprintSalt and fingerprintIterations make a secret's fingerprint: PBKDF2-HMAC-SHA256,
// about 35 ms a guess on one core of the 2-core machine it was measured on, up to 60 ms under
// load (go test ./cmd/ordercast -run '^$' -bench Fingerprint), so that a row of cluster_nodes
// read by someone it should not be gives no fast way to test guesses at the secret. The salt is
// fixed: every node must compute the same fingerprint.
const (
	fingerprintSalt       = "ordercast cluster fingerprint"
	fingerprintIterations = 200_000
)

// fingerprint returns secret's fingerprint: 16 bytes of PBKDF2, in base64.
func fingerprint(secret string) string {
	key, err := pbkdf2.Key(sha256.New, secret, []byte(fingerprintSalt), fingerprintIterations, 16)
	if err != nil {
		panic(err) // only for a key length or FIPS setting that a constant here rules out
	}
	return base64.RawStdEncoding.EncodeToString(key)
}

// clusterSettings are the settings a node announces in its row of cluster_nodes.
type clusterSettings struct {
	// Host names the node to the operator reading a mismatch; it is never compared.
	Host string `json:"host,omitempty"`
	// Build is the build the node runs (build.id): never compared, since a rolling upgrade runs
	// two for a while by design, but counted (ordercast_cluster_builds), so that the operator
	// sees a roll under way, or a node left behind. Empty: a node of an earlier release.
	Build string `json:"build,omitempty"`
	// LocationFrom is --location-from.
	LocationFrom string `json:"location_from"`
	// Signs is the fingerprint of --secret; Accepts those of every secret whose tokens the node
	// takes, --secret's and --accept-secrets'.
	Signs   string   `json:"signs"`
	Accepts []string `json:"accepts"`
	// JWTAudience and JWTIssuer are what RS256/ES256 tokens must carry.
	JWTAudience string `json:"jwt_audience"`
	JWTIssuer   string `json:"jwt_issuer"`
	// PrivacyRadius is --location-privacy-radius, and PublicTracking --public-tracking: each
	// node applies its own to what it is asked, so a node that disagrees shows couriers at other
	// customers' doors, or every order to anyone, to whoever the proxy sends it. Nil: a node of
	// an earlier release, which announced neither (and applies no privacy radius).
	PrivacyRadius  *float64 `json:"location_privacy_radius_m,omitempty"`
	PublicTracking *bool    `json:"public_tracking,omitempty"`
	// Retention is --retention, as a Go duration: the purge of ended orders runs on one node
	// at a time, each with its own, so a node whose --retention is shorter deletes the
	// cluster's orders (their history, personal data) earlier than the others would, and
	// sooner than a retention policy says. Nil: a node of an earlier release.
	Retention *string `json:"retention,omitempty"`
}

// clusterSettings returns what this node announces: secrets are the secret it signs with, then
// the others it accepts (securityConfig.secrets). The fingerprints cost their time once, here.
func (m *Main) clusterSettings(secrets []string) clusterSettings {
	host, _ := os.Hostname()
	c := clusterSettings{Host: host, Build: thisBuild().id(), LocationFrom: string(ordercast.LocationFrom(ordercast.Status(m.LocationFrom))), JWTAudience: m.JWTAudience, JWTIssuer: m.JWTIssuer,
		PrivacyRadius: &m.PrivacyRadius, PublicTracking: &m.PublicTracking, Retention: new(m.Retention.String())}
	for i, s := range secrets {
		f := fingerprint(s)
		if i == 0 {
			c.Signs = f
		}
		c.Accepts = append(c.Accepts, f)
	}
	return c
}

// mismatch is one way a node's settings disagree with this node's: the setting (as its flag),
// and what comes of it, which never holds a secret.
type mismatch struct{ Setting, Problem string }

// mismatches lists how theirs disagree with mine. The secrets agree when each node accepts the
// tokens the other signs, which a rotation keeps at every step (docs/security.md).
func mismatches(mine, theirs clusterSettings) []mismatch {
	var ms []mismatch
	if !slices.Contains(theirs.Accepts, mine.Signs) {
		ms = append(ms, mismatch{"secret", "the other node refuses (401) the tokens this node signs: this node's --secret is neither its --secret nor among its --accept-secrets"})
	}
	if !slices.Contains(mine.Accepts, theirs.Signs) {
		ms = append(ms, mismatch{"secret", "this node refuses (401) the tokens the other node signs: its --secret is neither this node's --secret nor among this node's --accept-secrets"})
	}
	// Either node may be of a release that published the flag as given ("" for the default).
	if ordercast.LocationFrom(ordercast.Status(mine.LocationFrom)) != ordercast.LocationFrom(ordercast.Status(theirs.LocationFrom)) {
		ms = append(ms, mismatch{"location-from", fmt.Sprintf("this node shows a courier's positions from %s, the other node from %s: which is shown depends on the node asked", mine.LocationFrom, theirs.LocationFrom)})
	}
	if mine.JWTAudience != theirs.JWTAudience {
		ms = append(ms, mismatch{"jwt-audience", fmt.Sprintf("this node takes RS256/ES256 tokens for %q, the other node for %q", mine.JWTAudience, theirs.JWTAudience)})
	}
	if mine.JWTIssuer != theirs.JWTIssuer {
		ms = append(ms, mismatch{"jwt-issuer", fmt.Sprintf("this node takes RS256/ES256 tokens from %q, the other node from %q", mine.JWTIssuer, theirs.JWTIssuer)})
	}
	if mine.PrivacyRadius != nil && theirs.PrivacyRadius != nil && *mine.PrivacyRadius != *theirs.PrivacyRadius {
		ms = append(ms, mismatch{"location-privacy-radius", fmt.Sprintf("this node keeps a courier from other customers' doors within %g m, the other node within %g m: which is shown depends on the node a courier's post reaches", *mine.PrivacyRadius, *theirs.PrivacyRadius)})
	}
	if mine.PublicTracking != nil && theirs.PublicTracking != nil && *mine.PublicTracking != *theirs.PublicTracking {
		ms = append(ms, mismatch{"public-tracking", fmt.Sprintf("this node's --public-tracking is %v, the other node's %v: whether an order is read without a token depends on the node asked", *mine.PublicTracking, *theirs.PublicTracking)})
	}
	if mine.Retention != nil && theirs.Retention != nil && *mine.Retention != *theirs.Retention {
		ms = append(ms, mismatch{"retention", fmt.Sprintf("this node deletes an ended order %s after it ended, the other node %s after (0s: never): the purge runs on one node at a time, so when an order is deleted depends on which", *mine.Retention, *theirs.Retention)})
	}
	return ms
}

// settingsCheck announces a node's settings every Interval and compares them with those of every
// node seen within Live. Each mismatch is logged once, at ERROR, when it is first seen, and once
// at INFO when it is gone; Mismatched is set while any stands.
type settingsCheck struct {
	Store    *postgres.Store
	Settings clusterSettings
	Interval time.Duration
	Live     time.Duration
	Logger   *slog.Logger
	// Queue, when set, looks at PostgreSQL's NOTIFY queue at each check too (notifyqueue.go).
	Queue *postgres.NotifyQueueWatch

	payload []byte
	// fails are the failures to read or write cluster_nodes; unreadable the rows that do not
	// read as settings (a later release's, changed): each warned about at most every
	// settingsWarnEvery.
	fails, unreadable failurelog.Failures

	mu         sync.Mutex
	standing   map[nodeMismatch]string // what the last check found, to the host of its node
	mismatched atomic.Bool
	// builds are the builds the last check found the live nodes running, this one's among them
	// (those that announce one), sorted; nbuilds how many.
	builds  []string
	nbuilds atomic.Int64

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// nodeMismatch is one mismatch with one node.
type nodeMismatch struct {
	node string
	mismatch
}

// newSettingsCheck returns a check of settings over st, with the defaults.
func newSettingsCheck(st *postgres.Store, settings clusterSettings, logger *slog.Logger) *settingsCheck {
	payload, _ := json.Marshal(settings) // strings only: it cannot fail
	return &settingsCheck{Store: st, Settings: settings, Interval: DefaultSettingsInterval, Live: DefaultSettingsLive,
		Logger: logger, payload: payload,
		fails: failurelog.Failures{Every: settingsWarnEvery}, unreadable: failurelog.Failures{Every: settingsWarnEvery}}
}

// start checks once, then every Interval on a goroutine of its own, until stop.
func (c *settingsCheck) start() {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.tick(ctx)
	c.wg.Go(func() {
		t := time.NewTicker(c.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.tick(ctx)
			}
		}
	})
}

// stop ends the checks and deletes the node's row, so that the others no longer compare with it.
// A failure is only logged, and a database known to be away is not tried: the row is unseen
// after Live anyway, and deleted within the hour.
func (c *settingsCheck) stop() {
	if c.cancel != nil {
		c.cancel()
		c.wg.Wait()
	}
	if c.Store.Unavailable() != "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), settingsForgetTimeout)
	defer cancel()
	if err := c.Store.ForgetNode(ctx); err != nil {
		c.Logger.Warn("deleting this node's row of cluster_nodes failed; the other nodes stop comparing their settings with it once it is unseen for "+c.Live.String(), "err", err)
	}
}

// tick is one round of the periodic checks: the settings, then the NOTIFY queue.
func (c *settingsCheck) tick(ctx context.Context) {
	c.check(ctx)
	if c.Queue != nil {
		c.Queue.Check(ctx)
	}
}

// check announces the node's settings, reads the live nodes', and logs what changed in how they
// disagree. A failure to read or write leaves what was found before standing.
func (c *settingsCheck) check(ctx context.Context) {
	nodes, err := c.Store.AnnounceSettings(ctx, c.payload, c.Live)
	if err != nil {
		if ctx.Err() != nil {
			return // stopping
		}
		if n, warn := c.fails.Failed(0); warn {
			c.Logger.Warn("announcing this node's settings to the cluster failed: a mismatch with another node goes unseen meanwhile", "failures", n.Failures, "err", err)
		}
		return
	}
	if n, was := c.fails.Worked(); was {
		c.Logger.Info("announcing this node's settings to the cluster works again", "failures_since_warning", n.Failures)
	}
	found := map[nodeMismatch]string{}
	builds := []string{c.Settings.Build}
	for _, n := range nodes {
		var theirs clusterSettings
		if err := json.Unmarshal(n.Settings, &theirs); err != nil {
			if _, warn := c.unreadable.Failed(0); warn {
				c.Logger.Warn("a node's row of cluster_nodes does not read as settings; its settings are not compared", "other_node", n.Node, "err", err)
			}
			continue
		}
		for _, m := range mismatches(c.Settings, theirs) {
			found[nodeMismatch{n.Node, m}] = theirs.Host
		}
		if theirs.Build != "" {
			builds = append(builds, theirs.Build)
		}
	}
	slices.Sort(builds)
	builds = slices.Compact(builds)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Equal(builds, c.builds) && (len(builds) > 1 || c.builds != nil) {
		// INFO, not a warning: a rolling upgrade runs two builds for a while by design. Said
		// when the set changes, so that a roll's start and end are in the log, and a node left
		// behind stands out by the line that never comes.
		c.Logger.Info("the cluster's live nodes run "+countBuilds(len(builds)), "builds", builds, "this_build", c.Settings.Build)
	}
	c.builds = builds
	c.nbuilds.Store(int64(len(builds)))
	for k, host := range found {
		if _, ok := c.standing[k]; !ok {
			c.Logger.Error("a live node of this cluster disagrees with this node's settings (logged once; INFO when it clears)",
				"setting", k.Setting, "other_node", k.node, "other_host", host, "problem", k.Problem)
		}
	}
	for k, host := range c.standing {
		if _, ok := found[k]; !ok {
			c.Logger.Info("a node no longer disagrees with this node's settings (changed, or stopped)",
				"setting", k.Setting, "other_node", k.node, "other_host", host)
		}
	}
	c.standing = found
	c.mismatched.Store(len(found) > 0)
}

// Mismatches returns the mismatches the last check found, by node.
func (c *settingsCheck) Mismatches() map[string][]mismatch {
	c.mu.Lock()
	defer c.mu.Unlock()
	by := map[string][]mismatch{}
	for k := range c.standing {
		by[k.node] = append(by[k.node], k.mismatch)
	}
	return by
}

// countBuilds is "one build", "2 builds".
func countBuilds(n int) string {
	if n == 1 {
		return "one build"
	}
	return fmt.Sprintf("%d builds", n)
}

// metrics are ordercast_cluster_settings_mismatch and ordercast_cluster_builds.
func (c *settingsCheck) metrics() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ordercast_cluster_settings_mismatch",
			Help: "1 while a live node of the cluster runs with settings that disagree with this node's (--secret and --accept-secrets, --location-from, --location-privacy-radius, --public-tracking, --retention, --jwt-audience, --jwt-issuer; the log's ERROR line names the setting and the node), else 0. PostgreSQL only.",
		}, func() float64 { return up(c.mismatched.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ordercast_cluster_builds",
			Help: "How many builds the cluster's live nodes run, this node's among them, as the last check of settings found (builds before commit de16ca3 (2026-12-07) announce none and are not counted): 2 during a rolling upgrade; more than 1 after one, a node left behind. PostgreSQL only.",
		}, func() float64 { return float64(c.nbuilds.Load()) }),
	}
}
