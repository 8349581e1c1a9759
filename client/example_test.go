package client_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/server"
	"github.com/ordercast/ordercast/sqlite"
)

// Example is the README's "From Go" section, word for word (internal/doctest checks that): a
// checkout service creates an order and hands its tracking token to the customer's app, which
// watches the order until its final status. It runs against a real server with auth on.
func Example() {
	ctx := context.Background()
	baseURL, systemToken := exampleServer() // your server, and `ordercast token --role system --sub checkout`

	checkout := &client.Client{BaseURL: baseURL, Token: systemToken}
	created, err := checkout.CreateOrder(ctx, client.CreateOrderRequest{}) // no ID: the server picks a fresh one
	if err != nil {
		log.Fatal(err)
	}

	// Hand created.TrackingToken to the customer's app; there:
	app := &client.Client{BaseURL: baseURL, Token: created.TrackingToken}
	w := app.Watch(ctx, created.ID, client.WatchOptions{})
	defer w.Close()

	// In this example checkout also plays the restaurant and the courier, moving the order on
	// each time the app has seen a change.
	moves := []ordercast.Status{ordercast.StatusConfirmed, ordercast.StatusOutForDelivery, ordercast.StatusDelivered}
	for {
		ev, err := w.Next(ctx) // io.EOF after the final status
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Seq, ev.Status)
		if int(ev.Seq) <= len(moves) {
			if _, err := checkout.SetStatus(ctx, created.ID, client.SetStatusRequest{Status: moves[ev.Seq-1]}); err != nil {
				log.Fatal(err)
			}
		}
	}
	// Output:
	// 1 placed
	// 2 confirmed
	// 3 out_for_delivery
	// 4 delivered
}

// ExampleClient_WatchRestaurant follows every order of one restaurant, as its board does: a
// snapshot of its active orders first, then each event of any of them. A restaurant watches its
// own board with its own token (`ordercast token --role restaurant --sub luigi`); dispatch, as
// here, with a system token.
func ExampleClient_WatchRestaurant() {
	ctx := context.Background()
	baseURL, systemToken := exampleServer()
	dispatch := &client.Client{BaseURL: baseURL, Token: systemToken}

	w := dispatch.WatchRestaurant(ctx, "luigi", client.WatchOptions{})
	defer w.Close()
	u, err := w.NextScoped(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("on the board:", len(u.Snapshot.Orders)) // a snapshot replaces whatever the board held

	for _, id := range []string{"o-1", "o-2"} {
		if _, err := dispatch.CreateOrder(ctx, client.CreateOrderRequest{ID: id, RestaurantID: "luigi"}); err != nil {
			log.Fatal(err)
		}
	}
	if _, err := dispatch.SetStatus(ctx, "o-1", client.SetStatusRequest{Status: ordercast.StatusConfirmed}); err != nil {
		log.Fatal(err)
	}
	for range 3 {
		u, err := w.NextScoped(ctx) // a dropped stream resumes after the last position returned
		if err != nil {
			log.Fatal(err)
		}
		if u.Event != nil {
			fmt.Println(u.Event.OrderID, u.Event.Status)
		}
	}
	// Output:
	// on the board: 0
	// o-1 placed
	// o-2 placed
	// o-1 confirmed
}

// Example_errors tells the answers a write may get apart: by its stable code (ordercast.ErrorCode)
// whatever the error, and by its HTTP status and Retry-After (*client.Error) when the server
// answered. A write with an idempotency key is safe to send again: its repeat is answered with
// the first answer, marked Replayed, and applied once.
func Example_errors() {
	ctx := context.Background()
	baseURL, systemToken := exampleServer()
	c := &client.Client{BaseURL: baseURL, Token: systemToken}

	created, err := c.CreateOrder(ctx, client.CreateOrderRequest{ID: "o-1"}, client.WithIdempotencyKey("checkout-7f3a"))
	if err != nil {
		log.Fatal(err)
	}
	again, err := c.CreateOrder(ctx, client.CreateOrderRequest{ID: "o-1"}, client.WithIdempotencyKey("checkout-7f3a"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created:", created.Created, "replayed:", again.Replayed)

	// Confirm the order only if nobody moved it since version 1; someone did.
	if _, err := c.SetStatus(ctx, "o-1", client.SetStatusRequest{Status: ordercast.StatusConfirmed}); err != nil {
		log.Fatal(err)
	}
	_, err = c.SetStatus(ctx, "o-1", client.SetStatusRequest{Status: ordercast.StatusCancelled, ExpectedVersion: new(int64(1))})
	var e *client.Error
	answered := errors.As(err, &e) // false for no answer at all, and for success
	switch {
	case answered && e.Code == ordercast.EVersionConflict:
		fmt.Println(e.StatusCode, e.Code, "- read the order again and decide anew")
	case answered && e.Code == ordercast.EUnavailable:
		fmt.Println("the store is away; try again after", e.RetryAfter)
	case client.OutcomeUnknown(err):
		fmt.Println("no answer: read the order before sending it again")
	case err != nil:
		log.Fatal(err) // any other refusal: ordercast.ErrorCode(err) names it
	}
	// Output:
	// created: true replayed: true
	// 409 version_conflict - read the order again and decide anew
}

// exampleServers are stopped by TestMain once the examples have run.
var (
	exampleMu      sync.Mutex
	exampleClosers []func()
)

// exampleServer starts a real server (SQLite in a temporary directory, auth on with a random
// secret) and returns its URL and a system actor token for it.
func exampleServer() (baseURL, systemToken string) {
	dir, err := os.MkdirTemp("", "ordercast-example-")
	if err != nil {
		log.Fatal(err)
	}
	h := hub.New()
	st := sqlite.New(filepath.Join(dir, "ordercast.db"))
	st.Publisher = h
	if err := st.Open(context.Background()); err != nil {
		log.Fatal(err)
	}
	tokens, err := auth.New([]byte(rand.Text() + rand.Text()))
	if err != nil {
		log.Fatal(err)
	}
	srv := server.New(st, h)
	srv.Addr = "127.0.0.1:0"
	srv.Auth = &server.Auth{Tokens: tokens}
	if err := srv.Open(); err != nil {
		log.Fatal(err)
	}
	exampleMu.Lock()
	exampleClosers = append(exampleClosers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := errors.Join(srv.Close(ctx), st.Close(), os.RemoveAll(dir)); err != nil {
			log.Printf("stop the example server: %v", err)
		}
	})
	exampleMu.Unlock()
	tok, err := tokens.SignActor(auth.Actor{Role: auth.RoleSystem, Sub: "checkout"}, time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	return srv.URL(), tok
}
