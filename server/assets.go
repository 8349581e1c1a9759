package server

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// asset is one static file as it is served: its bytes, and gzipped when that is smaller, each
// with its own entity tag, so that a phone on a slow network downloads about a third of the
// pages' scripts and styles, and a reload after the cache's five minutes only revalidates them.
type asset struct {
	contentType string
	plain, gz   []byte // gz is nil when gzip would not make it smaller
	tag, gzTag  string
	// version names the file's bytes in the pages' links to it (?v=, assetURL): a page links
	// to the very scripts it was made with, which a cache may keep for good.
	version string
}

// loadAssets reads every file of fsys, compressing each once: the files are embedded in the
// binary, so nothing changes until the next one.
func loadAssets(fsys fs.FS) (map[string]*asset, error) {
	assets := make(map[string]*asset)
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		a := &asset{contentType: mime.TypeByExtension(path.Ext(name)), plain: b, tag: strongTag(b)}
		a.version = strings.Trim(a.tag, `"`)[:12]
		if a.contentType == "" {
			a.contentType = http.DetectContentType(b)
		}
		var z bytes.Buffer
		w, _ := gzip.NewWriterLevel(&z, gzip.BestCompression) // a valid level: no error
		_, _ = w.Write(b)                                     // into memory: no error
		if err := w.Close(); err != nil {
			return err
		}
		if z.Len() < len(b) {
			// Its own bytes' tag: another build's compressor may write other bytes for the same
			// file, and a strong tag names bytes.
			a.gz, a.gzTag = z.Bytes(), strongTag(z.Bytes())
		}
		assets[name] = a
		return nil
	})
	return assets, err
}

// strongTag is the entity tag of b: 96 bits of its SHA-256, which name it among every version
// of a file a cache may hold.
func strongTag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
}

// serve answers a GET or HEAD of the asset: gzipped to a client that accepts it, as it is to
// one that does not, with Vary saying so to caches, and 304 to a client that has it already
// (http.ServeContent judges If-None-Match against the tag of the form it would send).
func (a *asset) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	body, tag := a.plain, a.tag
	if a.gz != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Values("Accept-Encoding")) {
			body, tag = a.gz, a.gzTag
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", tag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether Accept-Encoding values take gzip (RFC 9110 §12.5.3): named, or
// left to "*", with a weight above zero. A coding named outright wins over "*".
func acceptsGzip(values []string) bool {
	gz, star := -1.0, -1.0 // -1: not named
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			q := weight(params)
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "gzip", "x-gzip":
				gz = max(gz, q)
			case "*":
				star = max(star, q)
			}
		}
	}
	if gz >= 0 {
		return gz > 0
	}
	return star > 0
}

// weight is the q parameter of an Accept-Encoding member's parameters: 1 when there is none,
// 0 when it cannot be read.
func weight(params string) float64 {
	for p := range strings.SplitSeq(params, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
		if !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || q < 0 || q > 1 {
			return 0
		}
		return q
	}
	return 1
}
