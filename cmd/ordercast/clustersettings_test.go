package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/postgres"
)

// Three secrets of a cluster's tests, each long enough for --secret.
const (
	secret1 = "cluster-secret-one-0123456789abcdef0123"
	secret2 = "cluster-secret-two-0123456789abcdef0123"
	secret3 = "cluster-secret-three-0123456789abcdef01"
)

// fingerprints memoizes fingerprint, which costs tens of milliseconds a secret by design.
var fingerprints sync.Map

// testSettings returns the settings of a node that signs with signs and accepts accepts besides.
func testSettings(locationFrom, signs string, accepts ...string) clusterSettings {
	fp := func(s string) string {
		if f, ok := fingerprints.Load(s); ok {
			return f.(string)
		}
		f := fingerprint(s)
		fingerprints.Store(s, f)
		return f
	}
	c := clusterSettings{Host: "test-host", LocationFrom: locationFrom, Signs: fp(signs)}
	for _, s := range append([]string{signs}, accepts...) {
		c.Accepts = append(c.Accepts, fp(s))
	}
	return c
}

// settingsNode is one node's check of settings, over a store of its own, logging to log.
type settingsNode struct {
	check *settingsCheck
	log   *testutil.Buffer
}

func newSettingsNode(t *testing.T, db string, settings clusterSettings) *settingsNode {
	t.Helper()
	st := storetest.MustOpen(t, postgres.New(db))
	log := &testutil.Buffer{}
	return &settingsNode{check: newSettingsCheck(st, settings, slog.New(slog.NewTextHandler(log, nil))), log: log}
}

// mismatchedWith returns the settings the node's last check found disagreeing with other's, and
// its gauge.
func (n *settingsNode) mismatchedWith(other *settingsNode) ([]string, bool) {
	var settings []string
	for _, m := range n.check.Mismatches()[other.check.Store.Node()] {
		settings = append(settings, m.Setting)
	}
	return settings, n.check.mismatched.Load()
}

// withPrivacy is c announcing --location-privacy-radius radius and --public-tracking public.
func withPrivacy(c clusterSettings, radius float64, public bool) clusterSettings {
	c.PrivacyRadius, c.PublicTracking = &radius, &public
	return c
}

// withRetention is c with --retention keep.
func withRetention(c clusterSettings, keep time.Duration) clusterSettings {
	c.Retention = new(keep.String())
	return c
}

// TestClusterSettings: two nodes on one database, each checked once after both announced
// themselves, find each other's settings in agreement, or report each way they disagree: on
// both nodes, in the gauge, and in one ERROR line that names the setting and the other node
// and holds no secret.
func TestClusterSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b clusterSettings
		want []string // the settings each node reports, once for each way they disagree
	}{
		{"same settings", testSettings("out_for_delivery", secret1), testSettings("out_for_delivery", secret1), nil},
		{"location-from differs", testSettings("out_for_delivery", secret1), testSettings("confirmed", secret1), []string{"location-from"}},
		// The default, named or left empty (ORDERCAST_LOCATION_FROM set to ""), is one setting.
		{"location-from's default, named and not", testSettings("out_for_delivery", secret1), testSettings("", secret1), nil},
		// The rotation's second step, half done: both accept both secrets, each signs with one.
		{"a rotation", testSettings("out_for_delivery", secret1, secret2), testSettings("out_for_delivery", secret2, secret1), nil},
		// b accepts a's tokens, but a refuses b's.
		{"a secret the other does not accept", testSettings("out_for_delivery", secret1, secret2), testSettings("out_for_delivery", secret3, secret1, secret2), []string{"secret"}},
		// Each refuses the other's tokens.
		{"a wrong secret", testSettings("out_for_delivery", secret1), testSettings("out_for_delivery", secret3), []string{"secret", "secret"}},
		// Each node applies its own privacy rules to what it is asked.
		{"the same privacy", withPrivacy(testSettings("out_for_delivery", secret1), 250, false), withPrivacy(testSettings("out_for_delivery", secret1), 250, false), nil},
		{"a privacy radius turned off", withPrivacy(testSettings("out_for_delivery", secret1), 250, false), withPrivacy(testSettings("out_for_delivery", secret1), 0, false), []string{"location-privacy-radius"}},
		{"public tracking on one node", withPrivacy(testSettings("out_for_delivery", secret1), 250, false), withPrivacy(testSettings("out_for_delivery", secret1), 250, true), []string{"public-tracking"}},
		// A node of an earlier release announces neither: nothing to compare (the upgrade notes say so).
		{"an earlier release", withPrivacy(testSettings("out_for_delivery", secret1), 250, false), testSettings("out_for_delivery", secret1), nil},
		// Each node purges with its own --retention, whichever runs the purge.
		{"the same retention", withRetention(testSettings("out_for_delivery", secret1), 720*time.Hour), withRetention(testSettings("out_for_delivery", secret1), 720*time.Hour), nil},
		{"a shorter retention", withRetention(testSettings("out_for_delivery", secret1), 720*time.Hour), withRetention(testSettings("out_for_delivery", secret1), 72*time.Hour), []string{"retention"}},
		{"retention on one node only", withRetention(testSettings("out_for_delivery", secret1), 0), withRetention(testSettings("out_for_delivery", secret1), 720*time.Hour), []string{"retention"}},
		{"retention of an earlier release", withRetention(testSettings("out_for_delivery", secret1), 720*time.Hour), testSettings("out_for_delivery", secret1), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := pgtest.NewDatabase(t)
			a, b := newSettingsNode(t, db, tc.a), newSettingsNode(t, db, tc.b)
			ctx := t.Context()
			a.check.check(ctx)
			b.check.check(ctx)
			a.check.check(ctx)
			for _, n := range []struct {
				name        string
				node, other *settingsNode
			}{{"a", a, b}, {"b", b, a}} {
				got, gauge := n.node.mismatchedWith(n.other)
				errors := n.node.log.Count("level=ERROR")
				if !slices.Equal(got, tc.want) || gauge != (len(tc.want) > 0) || errors != len(tc.want) {
					t.Errorf("node %s: mismatches %v, gauge %v, %d ERROR lines; want %v, one line each:\n%s", n.name, got, gauge, errors, tc.want, n.node.log)
				}
				for _, setting := range tc.want {
					if line := "setting=" + setting + " other_node=" + n.other.check.Store.Node(); !strings.Contains(n.node.log.String(), line) {
						t.Errorf("node %s: no ERROR line with %q:\n%s", n.name, line, n.node.log)
					}
				}
				for _, s := range []string{secret1, secret2, secret3, tc.a.Signs, tc.b.Signs} {
					if strings.Contains(n.node.log.String(), s) {
						t.Errorf("node %s: the log holds a secret or its fingerprint:\n%s", n.name, n.node.log)
					}
				}
			}
		})
	}
}

// TestClusterSettingsLogOnceAndClear: a mismatch that stands is logged once, not at every check;
// when its node stops (deleting its row) the other says once, at INFO, that it is gone, and its
// gauge falls to 0.
func TestClusterSettingsLogOnceAndClear(t *testing.T) {
	db := pgtest.NewDatabase(t)
	a := newSettingsNode(t, db, testSettings("out_for_delivery", secret1))
	b := newSettingsNode(t, db, testSettings("confirmed", secret1))
	ctx := t.Context()
	b.check.check(ctx)
	for range 3 {
		a.check.check(ctx)
	}
	if n := a.log.Count("level=ERROR"); n != 1 {
		t.Fatalf("%d ERROR lines after 3 checks of one standing mismatch, want 1:\n%s", n, a.log)
	}
	b.check.stop()
	var rows int
	if err := pgtest.Connect(t, db).QueryRow(ctx, `SELECT count(*) FROM cluster_nodes WHERE node = $1`, b.check.Store.Node()).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("the stopped node's rows: %d, %v; want none", rows, err)
	}
	a.check.check(ctx)
	if got, gauge := a.mismatchedWith(b); len(got) != 0 || gauge {
		t.Errorf("after the other node stopped: mismatches %v, gauge %v; want none", got, gauge)
	}
	if n := a.log.Count("level=INFO msg=\"a node no longer disagrees"); n != 1 {
		t.Errorf("%d INFO lines saying the mismatch cleared, want 1:\n%s", n, a.log)
	}
}

// TestClusterBuilds: each node counts the builds its live nodes run (ordercast_cluster_builds),
// its own among them, and says in the log when that changes: two while a roll is under way, one
// once the node of the other build has gone. A node alone with its build says nothing.
func TestClusterBuilds(t *testing.T) {
	db := pgtest.NewDatabase(t)
	withBuild := func(build string) clusterSettings {
		c := testSettings("out_for_delivery", secret1)
		c.Build = build
		return c
	}
	a := newSettingsNode(t, db, withBuild("rev-new"))
	ctx := t.Context()
	a.check.check(ctx)
	if n := a.check.nbuilds.Load(); n != 1 || a.log.Count("the cluster's live nodes run") != 0 {
		t.Fatalf("alone: %d builds, want 1, and no line:\n%s", n, a.log)
	}
	b := newSettingsNode(t, db, withBuild("rev-old"))
	b.check.check(ctx)
	a.check.check(ctx)
	a.check.check(ctx)
	if n := a.check.nbuilds.Load(); n != 2 || a.log.Count(`msg="the cluster's live nodes run 2 builds" builds="[rev-new rev-old]" this_build=rev-new`) != 1 {
		t.Fatalf("beside a node of another build: %d builds, want 2, said once:\n%s", n, a.log)
	}
	b.check.stop()
	a.check.check(ctx)
	if n := a.check.nbuilds.Load(); n != 1 || a.log.Count(`msg="the cluster's live nodes run one build" builds=[rev-new]`) != 1 {
		t.Errorf("once the other node stopped: %d builds, want 1, said:\n%s", n, a.log)
	}
}

// TestServeWarnsOfAClusterMismatch: a node started with a --location-from unlike a running
// node's starts and is ready, logs the mismatch at start and shows it in
// ordercast_cluster_settings_mismatch; a node that stops deletes its row of cluster_nodes.
func TestServeWarnsOfAClusterMismatch(t *testing.T) {
	db := pgtest.NewDatabase(t)
	t.Setenv("ORDERCAST_SECRET", testutil.Secret)
	start := func(args ...string) (*Main, *testutil.Buffer) {
		t.Helper()
		log := &testutil.Buffer{}
		m := NewMain(io.Discard, log)
		if err := m.ParseFlags(append([]string{"--addr", "127.0.0.1:0", "--drain", "0s", "--db", db}, args...)); err != nil {
			t.Fatal(err)
		}
		if err := m.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		return m, log
	}
	first, _ := start()
	closeFirst := sync.OnceValue(first.Close)
	defer closeFirst()
	second, log := start("--location-from", "confirmed")
	defer second.Close()
	if !strings.Contains(log.String(), "level=ERROR") || !strings.Contains(log.String(), "setting=location-from other_node="+first.Listener.Store.Node()) {
		t.Errorf("the second node's log holds no ERROR line naming location-from and the first node:\n%s", log)
	}
	if status := getStatus(t, second.Server.URL()+"/readyz"); status != http.StatusOK {
		t.Errorf("/readyz of the node that disagrees: %d, want 200", status)
	}
	if _, body := get(t, second.Server.URL()+"/metrics"); !strings.Contains(string(body), "\nordercast_cluster_settings_mismatch 1\n") {
		t.Errorf("the second node's /metrics has no ordercast_cluster_settings_mismatch 1")
	}
	node := first.Listener.Store.Node()
	if err := closeFirst(); err != nil {
		t.Fatal(err)
	}
	var rows int
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pgtest.Connect(t, db).QueryRow(ctx, `SELECT count(*) FROM cluster_nodes WHERE node = $1`, node).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("the row of the node that stopped: %d, %v; want none", rows, err)
	}
}

// TestEveryLineOfAClusterNodeNamesIt: a node on PostgreSQL logs its id (that of its row of
// cluster_nodes) on every line, from its start to its end, so that lines gathered from several
// nodes say whose they are.
func TestEveryLineOfAClusterNodeNamesIt(t *testing.T) {
	db := pgtest.NewDatabase(t)
	t.Setenv("ORDERCAST_SECRET", testutil.Secret)
	log := &testutil.Buffer{}
	m := NewMain(io.Discard, log)
	if err := m.ParseFlags([]string{"--addr", "127.0.0.1:0", "--drain", "0s", "--db", db, "--log-level", "debug"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	node := m.Listener.Store.Node()
	getStatus(t, m.Server.URL()+"/v1/orders/nope") // a request's line too
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) < 3 {
		t.Fatalf("the node logged %d lines, want its start, a request and its end:\n%s", len(lines), log)
	}
	for _, line := range lines {
		if !strings.Contains(line, " node="+node) {
			t.Errorf("a line that does not name the node (%s): %s", node, line)
		}
	}
}

// BenchmarkFingerprint measures what one guess at a secret costs against its fingerprint in
// cluster_nodes: tens of milliseconds by design (fingerprintIterations).
func BenchmarkFingerprint(b *testing.B) {
	for b.Loop() {
		fingerprint(secret1)
	}
}
