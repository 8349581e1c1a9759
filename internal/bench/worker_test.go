package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// fakeWorker is the far end of a remoteGroup: it reads the group's commands and answers each
// with what answer returns (nothing when it returns ""), then stops; out.CloseWithError ends
// its messages as a worker that died or whose pipe broke would.
type fakeWorker struct {
	out *io.PipeWriter
}

func startFakeWorker(t *testing.T, answer func(op string) string) (*remoteGroup, *fakeWorker) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	g := newRemoteGroup(nil, inW, outR)
	go func() {
		sc := bufio.NewScanner(inR)
		for sc.Scan() {
			var c workerCommand
			if json.Unmarshal(sc.Bytes(), &c) != nil || c.Op == "close" {
				break
			}
			if a := answer(c.Op); a != "" {
				io.WriteString(outW, a+"\n")
			}
		}
		inR.Close()
	}()
	t.Cleanup(func() { g.Close(); outW.Close() })
	return g, &fakeWorker{out: outW}
}

// TestRemoteGroupTakeFailsLoudly: a worker that does not hand over its counts and samples (it
// reports an error, its messages break off or end, or it does not answer in time) fails the
// step, rather than leaving its last progress counts, without a sample, standing for it.
func TestRemoteGroupTakeFailsLoudly(t *testing.T) {
	progress := `{"type":"progress","counts":{"opened":5,"delivered":5}}`
	for _, tc := range []struct {
		name   string
		answer string            // to "finish"
		then   func(*fakeWorker) // after the answer
		want   string
	}{
		{"answers", `{"type":"result","counts":{"opened":5,"delivered":5,"samples":[[1,2,3,4]]}}`, nil, ""},
		{"reports an error", `{"type":"error","error":"recorder lost"}`, nil, "recorder lost"},
		{"breaks off", "", func(w *fakeWorker) { w.out.CloseWithError(errors.New("pipe broke")) }, "read its messages: pipe broke"},
		{"sends what is not a message", "{", nil, "bench worker ended before sending its counts"},
		{"ends", "", func(w *fakeWorker) { w.out.Close() }, "bench worker ended before sending its counts"},
		{"does not answer", "", nil, "did not send its counts within 30s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g, w := startFakeWorker(t, func(op string) string {
					if op == "finish" {
						return tc.answer
					}
					return ""
				})
				io.WriteString(w.out, progress+"\n")
				synctest.Wait()
				if c := g.Counts(); c.Delivered != 5 {
					t.Fatalf("progress counts %+v, want 5 delivered", c)
				}
				if tc.then != nil {
					tc.then(w)
				}
				c, err := g.Take()
				switch {
				case tc.want == "" && (err != nil || len(c.Samples) != 1):
					t.Fatalf("Take = %+v, %v; want the result with its sample", c, err)
				case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
					t.Fatalf("Take = %+v, %v; want an error saying %q", c, err, tc.want)
				}
			})
		})
	}
}

// TestOpeningEndsWithAWorkerThatEnded: a worker that fails or exits while its watchers open
// holds none of them; the bench says so at once instead of waiting out openTimeout.
func TestOpeningEndsWithAWorkerThatEnded(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(*fakeWorker)
		want string
	}{
		{"exits", func(w *fakeWorker) { w.out.Close() }, "bench worker ended before its watchers were open"},
		{"reports an error", func(w *fakeWorker) {
			io.WriteString(w.out, `{"type":"error","error":"too many open files"}`+"\n")
		}, "too many open files"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g, w := startFakeWorker(t, func(string) string { return "" })
				r := &run{cfg: Config{Watchers: 10}, target: &target{}, groups: []group{g}}
				io.WriteString(w.out, `{"type":"progress","counts":{"opened":4}}`+"\n")
				synctest.Wait()
				tc.end(w)
				start := time.Now()
				err := r.waitOpen(context.Background(), 0)
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "4 of 10 watchers open") {
					t.Fatalf("waitOpen = %v; want an error with %q and the count open", err, tc.want)
				}
				if waited := time.Since(start); waited > time.Second {
					t.Errorf("waitOpen waited %s for a worker that had ended", waited)
				}
			})
		})
	}
}
