package sidelisten_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/ordercast/ordercast/internal/sidelisten"
)

// TestLife: a side server answers once served; Shutdown lets go of its address, and a Close
// after it finds nothing more to do. One closed before it ever served lets go of its address
// too, and a nil one (a side listener not asked for) does nothing.
func TestLife(t *testing.T) {
	s, err := sidelisten.Listen("test", "127.0.0.1:0", &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "here")
	})})
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()
	s.Serve()
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "here" {
		t.Fatalf("answered %q, want here", body)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close after Shutdown: %v", err)
	}
	free(t, addr)

	never, err := sidelisten.Listen("test", "127.0.0.1:0", &http.Server{})
	if err != nil {
		t.Fatal(err)
	}
	addr = never.Addr().String()
	if err := never.Close(); err != nil {
		t.Fatalf("Close before Serve: %v", err)
	}
	free(t, addr)

	var none *sidelisten.Server
	none.Serve()
	if err := none.Shutdown(context.Background()); err != nil {
		t.Errorf("a nil server's Shutdown: %v", err)
	}
	if err := none.Close(); err != nil {
		t.Errorf("a nil server's Close: %v", err)
	}
}

// free fails t unless addr can be listened on again.
func free(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("%s not let go: %v", addr, err)
	}
	ln.Close()
}

// TestListenOnAnAddressInUse: the error names the side listener and the address.
func TestListenOnAnAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := sidelisten.Listen("metrics", ln.Addr().String(), &http.Server{}); err == nil {
		t.Fatal("listened on an address in use")
	} else if want := "metrics: listen on " + ln.Addr().String(); len(err.Error()) < len(want) || err.Error()[:len(want)] != want {
		t.Errorf("error %q, want it to begin %q", err, want)
	}
}
