// Package headless finds the Chromium that the browser tests and the measuring tools drive, and
// starts it as they all do, so that a figure from a tool and a test's page see the same browser.
package headless

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/chromedp/chromedp"
)

// names are the browser's names on PATH: Debian's chromium package, other distributions'
// chromium-browser, and Google Chrome.
var names = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// Find returns the browser to drive: $ORDERCAST_CHROMIUM (a path or a name on PATH) when set,
// else the first of names found on PATH.
func Find() (string, error) {
	if p := os.Getenv("ORDERCAST_CHROMIUM"); p != "" {
		path, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("ORDERCAST_CHROMIUM=%s: %w", p, err)
		}
		return path, nil
	}
	for _, name := range names {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("none of %s is on PATH, and ORDERCAST_CHROMIUM is not set", strings.Join(names, ", "))
}

// Allocator starts the browser at path headless, with nothing of its own going on (no
// background networking, updates or sync) and extra's options after these; cancel ends it.
func Allocator(ctx context.Context, path string, extra ...chromedp.ExecAllocatorOption) (context.Context, context.CancelFunc) {
	opts := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		// A full-page screenshot of a page taller than the screen was cut 15 px short of its
		// right edge, where the scrollbar stood: a page with no right margin, it seemed.
		chromedp.Flag("hide-scrollbars", true),
	}, extra...)
	return chromedp.NewExecAllocator(ctx, opts...)
}
