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
