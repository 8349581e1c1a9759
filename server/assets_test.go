package server_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestStaticFilesAreGzippedForClientsThatTakeIt: a page's script goes gzipped to a client whose
// Accept-Encoding takes gzip (about a third of its bytes, for a phone on a slow network), as it
// is to one that does not, with Vary saying so; each form has its own entity tag, and a client
// that has the form it would be sent gets 304.
func TestStaticFilesAreGzippedForClientsThatTakeIt(t *testing.T) {
	t.Parallel()
	base := newServer(t, nil).URL()
	const file = "/static/track.js"
	plainResp, plain := call(t, "GET", base+file, "", "", "Accept-Encoding", "identity")
	if plainResp.StatusCode != http.StatusOK || plainResp.Header.Get("Content-Encoding") != "" || !strings.Contains(string(plain), "function") {
		t.Fatalf("GET %s as it is: %d, Content-Encoding %q, %.40q", file, plainResp.StatusCode, plainResp.Header.Get("Content-Encoding"), plain)
	}
	if ct := plainResp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("Content-Type %q, want text/javascript", ct)
	}
	for _, tc := range []struct {
		accept string
		gzip   bool
	}{
		{"gzip, deflate, br, zstd", true}, // a browser's
		{"br;q=1.0, GZIP;q=0.5", true},
		{"*", true},
		{"identity", false},
		{"br", false},
		{"gzip;q=0", false},
		{"gzip; q=0.000, *", false}, // named outright, refused: "*" does not bring it back
		{"*;q=0, gzip", true},
	} {
		resp, body := call(t, "GET", base+file, "", "", "Accept-Encoding", tc.accept)
		if got := resp.Header.Get("Content-Encoding") == "gzip"; got != tc.gzip {
			t.Errorf("Accept-Encoding %q: gzipped %v, want %v", tc.accept, got, tc.gzip)
			continue
		}
		if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("Accept-Encoding %q: Vary %q, want Accept-Encoding", tc.accept, resp.Header.Get("Vary"))
		}
		if !tc.gzip {
			continue
		}
		z, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		unzipped, err := io.ReadAll(z)
		if err != nil || !bytes.Equal(unzipped, plain) {
			t.Fatalf("Accept-Encoding %q: the gzipped body (%d bytes) is not the file (%d bytes): %v", tc.accept, len(body), len(plain), err)
		}
		if len(body)*2 > len(plain) {
			t.Errorf("gzipped %d bytes of %d", len(body), len(plain))
		}
		if resp.Header.Get("ETag") == plainResp.Header.Get("ETag") {
			t.Errorf("both forms have the entity tag %s", resp.Header.Get("ETag"))
		}
	}
	gzResp, _ := call(t, "GET", base+file, "", "", "Accept-Encoding", "gzip")
	for _, tc := range []struct {
		accept, tag string
		want        int
	}{
		{"gzip", gzResp.Header.Get("ETag"), http.StatusNotModified},
		{"identity", plainResp.Header.Get("ETag"), http.StatusNotModified},
		{"gzip", plainResp.Header.Get("ETag"), http.StatusOK}, // has the other form
	} {
		if resp, _ := call(t, "GET", base+file, "", "", "Accept-Encoding", tc.accept, "If-None-Match", tc.tag); resp.StatusCode != tc.want {
			t.Errorf("Accept-Encoding %q, If-None-Match %s: %d, want %d", tc.accept, tc.tag, resp.StatusCode, tc.want)
		}
	}
}

// TestPagesLinkTheirOwnBuildsScripts: a page links each script and style by its version
// (?v=, the file's bytes), which a cache keeps for good; a link with another version (a page of
// another build, met during a rolling upgrade) is refused 503, uncached, for a proxy to ask a
// node of that build, rather than run the page with this build's script; one without a version
// keeps the short cache.
func TestPagesLinkTheirOwnBuildsScripts(t *testing.T) {
	t.Parallel()
	base := newServer(t, nil).URL()
	_, page := call(t, "GET", base+"/console", "", "")
	links := regexp.MustCompile(`(?:src|href)="(/static/[a-z]+\.(?:js|css))\?v=([A-Za-z0-9_-]{12})"`).FindAllStringSubmatch(string(page), -1)
	if len(links) < 3 {
		t.Fatalf("the console links %d versioned scripts and styles, want api.js, console.js and app.css: %s", len(links), page)
	}
	for _, l := range links {
		file, version := l[1], l[2]
		for _, tc := range []struct {
			query string
			code  int
			cache string
		}{
			{"?v=" + version, http.StatusOK, "public, max-age=31536000, immutable"},
			{"?v=AAAAAAAAAAAA", http.StatusServiceUnavailable, "no-store"},
			{"", http.StatusOK, "public, max-age=300"},
		} {
			resp, body := call(t, "GET", base+file+tc.query, "", "")
			if resp.StatusCode != tc.code || len(body) == 0 || resp.Header.Get("Cache-Control") != tc.cache {
				t.Errorf("GET %s%s: %d, Cache-Control %q; want %d, %q", file, tc.query, resp.StatusCode, resp.Header.Get("Cache-Control"), tc.code, tc.cache)
			}
		}
	}
}
