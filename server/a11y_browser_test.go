package server_test

// The tests of what the pages tell a screen reader, and of what they show a reader who enlarged
// the text, that the accessibility audit against WCAG 2.2 AA asked for.

import (
	"strconv"
	"testing"

	"github.com/chromedp/cdproto/network"

	"github.com/ordercast/ordercast"
)

// TestCourierPageSaysAProblemOnce: the courier's problem line is an alert, which a screen reader
// reads out whenever it is written. With the server out of reach every post of a position fails
// with the same words, once a second: the line says them once, and is not written again.
func TestCourierPageSaysAProblemOnce(t *testing.T) {
	ls, _ := newAuthLocationServer(t)
	courierOrder(t, ls, "d-1", "c-1", ordercast.StatusOutForDelivery)
	b := newBrowser(t)
	recordFetches(b)
	shortenTimings(b, `{locationIntervalMs: 50}`)
	restore, _ := b.failRequests(network.ErrorReasonInternetDisconnected, "*/v1/couriers/c-1/location")
	defer restore()
	shareOnCourierPage(t, b, ls.URL())
	b.poll("the page says the position did not go", `document.getElementById('share-error').textContent === 'The server cannot be reached.'`)
	eval[bool](b, `(window.written = 0, new MutationObserver(ms => { window.written += ms.length; })
		.observe(document.getElementById('share-error'), {childList: true, characterData: true, subtree: true}), true)`)
	posts := `fetches.filter(f => f.startsWith('POST ') && f.endsWith('/v1/couriers/c-1/location')).length`
	from := eval[int](b, posts)
	b.poll("three more posts refused", posts+` >= `+strconv.Itoa(from+3))
	if n := eval[int](b, `window.written`); n != 0 {
		t.Errorf("three more posts refused alike wrote the alert %d times, want none: it says the same", n)
	}
}
