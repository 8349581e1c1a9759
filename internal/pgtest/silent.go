package pgtest

import (
	"errors"
	"net"
	"sync"
	"testing"
)

// NewSilentServer starts a server that takes every TCP connection and never answers on it, nor
// closes it: how a PostgreSQL server that is hung, or stuck on its disk before it authenticates,
// looks to a client, whose connection attempt waits for as long as it lets it. It stops, closing
// what it holds, when the test ends. It returns a URL of a database on it, which no connection
// to it reaches.
func NewSilentServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed when the test ends
			}
			mu.Lock()
			conns = append(conns, c) // held, unread: what the client sends waits in the socket
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		err := ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
		if err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("close the silent server: %v", err)
		}
	})
	return "postgres://postgres@" + ln.Addr().String() + "/ordercast?sslmode=disable"
}
