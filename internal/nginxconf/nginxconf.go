// Package nginxconf turns the nginx example of docs/deploy.md into a configuration that runs on
// loopback, and runs it, so that tests and ordercast check exercise the documented set-up.
package nginxconf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ordercast/ordercast/docs"
)

var (
	block       = regexp.MustCompile("(?s)```nginx\n(.*?)```")
	serverLines = regexp.MustCompile(`(?m)^\s*server 10\.0\.0\.\d+:8080( [^;\n]*)?;\n`)
	rlimitLine  = regexp.MustCompile(`(?m)^worker_rlimit_nofile (\d+);`)
)

// Find returns the nginx binary: /usr/sbin/nginx, or nginx on PATH.
func Find() (string, error) {
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	p, err := exec.LookPath("nginx")
	if err != nil {
		return "", fmt.Errorf("nginx not found in /usr/sbin or on PATH (apt-get install nginx): %w", err)
	}
	return p, nil
}

// Config returns the docs' nginx configuration with its upstream servers replaced by upstreams
// (base URLs), listening on 127.0.0.1:port, one worker, and its temporary files under dir.
func Config(upstreams []string, port int, dir string) (string, error) {
	m := block.FindSubmatch(docs.Deploy)
	if m == nil {
		return "", errors.New("docs/deploy.md has no ```nginx block")
	}
	conf := string(m[1])
	// Two upstreams of the same three nodes: every request, and couriers' positions by courier.
	const upstreamBlocks = 2
	if got := len(serverLines.FindAllString(conf, -1)); got != 3*upstreamBlocks {
		return "", fmt.Errorf("docs' nginx config has %d upstream server lines, want %d", got, 3*upstreamBlocks)
	}
	// Each node with the docs' parameters (max_fails, fail_timeout).
	params := serverLines.FindStringSubmatch(conf)[1]
	var servers strings.Builder
	for _, u := range upstreams {
		fmt.Fprintf(&servers, "        server %s%s;\n", strings.TrimPrefix(u, "http://"), params)
	}
	conf = serverLines.ReplaceAllString(conf, "")
	const keepalive = "        keepalive 32;\n"
	if got := strings.Count(conf, keepalive); got != upstreamBlocks {
		return "", fmt.Errorf("docs' nginx config has %d keepalive lines to put the servers before, want %d", got, upstreamBlocks)
	}
	conf = strings.ReplaceAll(conf, keepalive, servers.String()+keepalive)
	if !strings.Contains(conf, "listen 80;") {
		return "", errors.New("docs' nginx config does not listen on 80")
	}
	conf = strings.Replace(conf, "listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", port), 1)
	conf = strings.Replace(conf, "worker_processes auto;", "worker_processes 1;", 1)
	// The docs' file limit is for a server of its own; a machine whose hard limit is lower (a
	// test's, a container's) would have nginx log an alert for it at every start.
	var lim syscall.Rlimit
	if m := rlimitLine.FindStringSubmatch(conf); m == nil {
		return "", errors.New("docs' nginx config sets no worker_rlimit_nofile")
	} else if want, _ := strconv.ParseUint(m[1], 10, 64); syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Max < want {
		conf = rlimitLine.ReplaceAllString(conf, fmt.Sprintf("worker_rlimit_nofile %d;", lim.Max))
	}
	// Temporary files under dir; with proxy_buffering off they stay empty.
	conf = strings.Replace(conf, "http {\n", "http {\n"+
		"    client_body_temp_path "+dir+"/body;\n    proxy_temp_path "+dir+"/proxy;\n"+
		"    fastcgi_temp_path "+dir+"/fastcgi;\n    uwsgi_temp_path "+dir+"/uwsgi;\n    scgi_temp_path "+dir+"/scgi;\n", 1)
	return conf, nil
}

// Nginx is a running nginx started by Start.
type Nginx struct {
	URL      string
	Cmd      *exec.Cmd
	ErrorLog string
	Output   *bytes.Buffer // what nginx wrote to stdout and stderr; read it after Stop
	done     chan struct{}
}

// Start runs bin in the foreground with the docs' configuration in front of upstreams, on port,
// with its files in dir, and returns once it answers /readyz (at most 10 s). Each edit, in turn,
// changes the configuration before it is written (a test's shorter timeout, say).
func Start(ctx context.Context, bin string, upstreams []string, port int, dir string, edits ...func(conf string) (string, error)) (*Nginx, error) {
	conf, err := Config(upstreams, port, dir)
	if err != nil {
		return nil, err
	}
	for _, edit := range edits {
		if conf, err = edit(conf); err != nil {
			return nil, fmt.Errorf("edit nginx config: %w", err)
		}
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("write nginx config: %w", err)
	}
	n := &Nginx{URL: fmt.Sprintf("http://127.0.0.1:%d", port), ErrorLog: filepath.Join(dir, "error.log"),
		Output: &bytes.Buffer{}, done: make(chan struct{})}
	n.Cmd = exec.Command(bin, "-p", dir, "-c", confPath, "-e", n.ErrorLog,
		"-g", fmt.Sprintf("daemon off; master_process on; pid %s/nginx.pid; error_log %s warn;", dir, n.ErrorLog))
	n.Cmd.Stdout, n.Cmd.Stderr = n.Output, n.Output
	if err := n.Cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	go func() { _ = n.Cmd.Wait(); close(n.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-n.done:
			log, _ := os.ReadFile(n.ErrorLog)
			return nil, fmt.Errorf("nginx exited: %s %s", n.Output, log)
		case <-ctx.Done():
			return nil, errors.Join(ctx.Err(), n.Stop())
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", n.URL+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, errors.Join(fmt.Errorf("nginx did not come up in 10s: %v", err), n.Stop())
		}
		time.Sleep(20 * time.Millisecond) // polling readiness with a deadline
	}
}

// Stop ends nginx (SIGTERM: fast stop; SIGKILL after 10 s) and waits for it.
func (n *Nginx) Stop() error {
	_ = n.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
		return nil
	case <-time.After(10 * time.Second):
		_ = n.Cmd.Process.Kill()
		<-n.done
		return errors.New("nginx did not stop in 10s; killed")
	}
}

// Done is closed when nginx has exited.
func (n *Nginx) Done() <-chan struct{} { return n.done }
