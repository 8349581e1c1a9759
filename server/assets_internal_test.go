package server

import (
	"strings"
	"testing"
	"testing/fstest"
)

// TestAGzippedFilesTagNamesItsOwnBytes: a strong entity tag names the bytes sent, so the gzipped
// form's tag is made of the gzipped bytes, as a file of those bytes would be tagged, not of the
// file's: another build's compressor may write other bytes for the same file, and a cache that
// kept the old ones must not be told they are the same.
func TestAGzippedFilesTagNamesItsOwnBytes(t *testing.T) {
	text := []byte(strings.Repeat("function f() { return 1 }\n", 200))
	as, err := loadAssets(fstest.MapFS{"f.js": {Data: text}})
	if err != nil {
		t.Fatal(err)
	}
	a := as["f.js"]
	if a.gz == nil {
		t.Fatal("a repetitive script is not gzipped")
	}
	zs, err := loadAssets(fstest.MapFS{"f.js.gz": {Data: a.gz}})
	if err != nil {
		t.Fatal(err)
	}
	if want := zs["f.js.gz"].tag; a.gzTag != want {
		t.Errorf("the gzipped form's tag is %s, want %s, the tag of its bytes", a.gzTag, want)
	}
	if a.gzTag == a.tag {
		t.Errorf("both forms have the tag %s", a.tag)
	}
}
