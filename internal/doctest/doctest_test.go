package doctest

// The conventions, for whoever writes documentation:
//
//   - Every fenced block whose language is sh, bash or shell is run, in document order (README.md
//     first, then docs/*.md by name), in one bash session, so a variable or a background server
//     from one block is there in the next, as in a reader's terminal. A new block needs nothing
//     to be run.
//   - A block that cannot run in a test (Docker, systemd, a long-lived demo, the bench, a remote
//     database) is marked on the line just above its opening fence (blank lines between are
//     fine) with an HTML comment, invisible on GitHub, that says why:
//
//         <!-- doctest: skip (needs Docker) -->
//
//     The test lists every skipped block with its reason, and fails on a marker with no reason
//     or with no block under it.
//   - Blocks fail the test when a command fails (bash -e -o pipefail) or when they print an API
//     error body ({"error":{…}}): curl -s exits 0 on a 401, so its answer is checked instead.
//   - Blocks without a language, or in another one (nginx, go, text), are not run.
//
// The blocks run in a copy of the repository (so `go install ./cmd/ordercast` works and nothing
// is written into the working tree) with GOPATH set to a temporary directory: what `go install`
// builds lands in $(go env GOPATH)/bin, which is first on PATH. Port 8080 in the blocks is
// rewritten to a free port, in one place: docPort below.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// docPort is the port the documentation uses; the test rewrites it to a free one so that it never
// meets a demo or another test on this machine.
const docPort = "8080"

// block is one fenced code block of a markdown file.
type block struct {
	file, lang, text string
	line             int    // of the opening fence, 1-based
	skip             string // the reason given in a doctest: skip marker, or ""
}

func (b block) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

var (
	fence      = regexp.MustCompile("^(```+|~~~+)\\s*([A-Za-z0-9_+-]*)")
	skipMarker = regexp.MustCompile(`^<!--\s*doctest:\s*skip\b\s*(.*?)\s*-->\s*$`)
)

// shellLangs are the fence languages that are run.
var shellLangs = []string{"sh", "bash", "shell"}

// parseBlocks returns the fenced blocks of a markdown document, each with the skip marker above it.
func parseBlocks(file string, data []byte) ([]block, error) {
	var blocks []block
	var pendingSkip string
	pendingLine := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if m := skipMarker.FindStringSubmatch(line); m != nil {
			reason := strings.TrimSuffix(strings.TrimPrefix(m[1], "("), ")")
			if strings.TrimSpace(reason) == "" {
				return nil, fmt.Errorf("%s:%d: a doctest: skip marker must say why, as in <!-- doctest: skip (needs Docker) -->", file, n)
			}
			pendingSkip, pendingLine = reason, n
			continue
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		m := fence.FindStringSubmatch(line)
		if m == nil {
			if pendingSkip != "" {
				return nil, fmt.Errorf("%s:%d: a doctest: skip marker with no code block under it", file, pendingLine)
			}
			continue
		}
		b := block{file: file, lang: m[2], line: n, skip: pendingSkip}
		pendingSkip = ""
		var text strings.Builder
		closed := false
		for n++; sc.Scan(); n++ {
			if strings.HasPrefix(strings.TrimSpace(sc.Text()), m[1]) {
				closed = true
				break
			}
			text.WriteString(sc.Text())
			text.WriteByte('\n')
		}
		if !closed {
			return nil, fmt.Errorf("%s:%d: code block never closed", file, b.line)
		}
		b.text = text.String()
		blocks = append(blocks, b)
	}
	if pendingSkip != "" {
		return nil, fmt.Errorf("%s:%d: a doctest: skip marker with no code block under it", file, pendingLine)
	}
	return blocks, sc.Err()
}

// repoRoot is the module's root, two directories up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	return root
}

// docBlocks returns the blocks of README.md, then of docs/*.md by name.
func docBlocks(t *testing.T, root string) []block {
	t.Helper()
	files := []string{"README.md"}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(more)
	for _, f := range more {
		rel, err := filepath.Rel(root, f)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, rel)
	}
	var all []block
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		bs, err := parseBlocks(f, data)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, bs...)
	}
	return all
}

// TestParseBlocks pins the marker conventions.
func TestParseBlocks(t *testing.T) {
	doc := "text\n\n<!-- doctest: skip (needs Docker) -->\n\n```sh\ndocker build .\n```\n\n```sh\necho hi\n```\n\n```\noutput\n```\n"
	bs, err := parseBlocks("x.md", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 3 || bs[0].skip != "needs Docker" || bs[0].text != "docker build .\n" || bs[1].skip != "" || bs[1].line != 9 || bs[2].lang != "" {
		t.Errorf("blocks %+v", bs)
	}
	for _, bad := range []string{
		"<!-- doctest: skip -->\n```sh\nx\n```\n",                  // no reason
		"<!-- doctest: skip (why) -->\nsome text\n```sh\nx\n```\n", // marker not on the block
		"```sh\nnever closed\n",
	} {
		if _, err := parseBlocks("bad.md", []byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// TestShellBlocksRunAsPasted runs every shell block of the documentation, in order, in one bash
// session, against the ordercast that the README's own `go install` builds.
func TestShellBlocksRunAsPasted(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the documentation's examples; not with -short")
	}
	for _, tool := range []string{"bash", "curl", "openssl", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("the documentation's examples need %s under CI: %v", tool, err)
			}
			t.Skipf("the documentation's examples need %s: %v", tool, err)
		}
	}
	root := repoRoot(t)
	var run []block
	for _, b := range docBlocks(t, root) {
		switch {
		case !slices.Contains(shellLangs, b.lang):
		case b.skip != "":
			t.Logf("skipped %s: %s", b, b.skip)
		default:
			run = append(run, b)
		}
	}
	if len(run) == 0 {
		t.Fatal("no runnable shell block found in the documentation")
	}

	tmp := t.TempDir()
	work := filepath.Join(tmp, "ordercast")
	if err := copyTree(root, work); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	var script strings.Builder
	// Stop what the blocks left running (the README's server) when the session ends.
	script.WriteString("set -e -o pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true; wait || true' EXIT\n")
	for _, b := range run {
		fmt.Fprintf(&script, "echo '>>> doctest block %s'\n", b)
		// The one rewrite of the documentation's text: its port, to a free one.
		script.WriteString(strings.ReplaceAll(b.text, ":"+docPort, ":"+port))
	}
	script.WriteString("echo '>>> doctest done'\n")

	gomodcache := goEnv(t, "GOMODCACHE")
	gopath := filepath.Join(tmp, "gopath")
	// Generous: on a machine with a cold build cache the first block compiles everything (minutes).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = work
	cmd.Env = append(cleanEnv(),
		"GOPATH="+gopath,
		"GOMODCACHE="+gomodcache, // the modules already downloaded: no network
		"GOFLAGS=-trimpath",      // a copy of the tree in a new directory still hits the build cache
		"GOTOOLCHAIN=local",
		"PATH="+filepath.Join(gopath, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"),
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Whatever the session left behind (a server in the background) goes with its process group.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // no process of the session may outlive it
	}
	output := out.String()
	t.Logf("session output:\n%s", output)
	if err != nil {
		t.Fatalf("the documentation's shell blocks failed in the last block named above: %v", err)
	}
	if !strings.Contains(output, ">>> doctest done") {
		t.Fatal("the session ended before its last block")
	}
	if m := regexp.MustCompile(`\{"error":\{[^}]*\}\}`).FindString(output); m != "" {
		t.Fatalf("a block got an API error: %s", m)
	}
	t.Logf("ran %d shell blocks", len(run))
}

// TestReadmeGoSnippetIsTheExample: the README's Go code is client.Example, which `go test`
// compiles, runs and checks against its // Output:, so the snippet cannot rot.
func TestReadmeGoSnippetIsTheExample(t *testing.T) {
	root := repoRoot(t)
	var snippets []block
	for _, b := range docBlocks(t, root) {
		if b.lang == "go" {
			snippets = append(snippets, b)
		}
	}
	src, err := os.ReadFile(filepath.Join(root, "client", "example_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	start := strings.Index(text, "func Example() {")
	end := strings.Index(text[max(start, 0):], "\n}\n")
	if start < 0 || end < 0 {
		t.Fatal("client/example_test.go has no func Example")
	}
	example := text[start : start+end+3]
	for _, s := range snippets {
		if s.text == example {
			return
		}
	}
	t.Errorf("no Go block of the documentation is client/example_test.go's Example, word for word; paste it:\n%s", example)
}

// cleanEnv is this process's environment without ORDERCAST_* variables and Go settings the test
// sets itself, so that a developer's shell does not change what the blocks do.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "ORDERCAST_") || slices.Contains([]string{"GOPATH", "GOMODCACHE", "GOFLAGS", "GOTOOLCHAIN", "PATH", "GOBIN"}, name) {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// copyTree copies the repository's files to dst, leaving out version control and what a run
// writes (databases, binaries): a fresh clone, as far as the blocks can tell.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if rel != "." && (name == ".git" || name == "node_modules") {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() || name == ".git" || strings.HasPrefix(name, "ordercast.db") || rel == "ordercast" || strings.HasSuffix(name, ".test") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
}
