package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"time"
)

// The bench talks to its worker processes in JSON lines: commands on the worker's stdin, and
// progress and results on its stdout.
type workerCommand struct {
	Op   string     `json:"op"` // open, mark, post, finish, close
	Spec *GroupSpec `json:"spec,omitempty"`
	// Duration is how long "post" posts positions.
	Duration time.Duration `json:"duration,omitempty"`
}

type workerMessage struct {
	Type   string      `json:"type"` // progress, marked, posted, result, error
	Counts Counts      `json:"counts"`
	Posts  *PostCounts `json:"posts,omitempty"`
	Error  string      `json:"error,omitempty"`
}

// progressEvery is how often a worker reports its counts.
const progressEvery = 250 * time.Millisecond

// RunWorker is the bench-worker subcommand: it runs one group of watchers as the parent
// commands, until the parent says close or its stdin ends.
func RunWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	RaiseFileLimit()
	var mu sync.Mutex
	enc := json.NewEncoder(out)
	send := func(m workerMessage) error {
		mu.Lock()
		defer mu.Unlock()
		return enc.Encode(m)
	}
	var g *Group
	stop := make(chan struct{})
	defer close(stop)
	defer func() {
		if g != nil {
			g.Close()
		}
	}()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var cmd workerCommand
		if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
			return fmt.Errorf("bad command %q: %w", sc.Text(), err)
		}
		switch cmd.Op {
		case "open":
			if g != nil || cmd.Spec == nil {
				return errors.New("open: a worker runs one group")
			}
			var err error
			if g, err = OpenGroup(*cmd.Spec); err != nil {
				send(workerMessage{Type: "error", Error: err.Error()})
				return err
			}
			go func() {
				t := time.NewTicker(progressEvery)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-ctx.Done():
						return
					case <-t.C:
						if send(workerMessage{Type: "progress", Counts: g.Counts()}) != nil {
							return
						}
					}
				}
			}()
		case "mark":
			if g == nil {
				return errors.New("mark before open")
			}
			g.Mark()
			// The parent drives the load only after this answer: an event that arrived between
			// its "mark" and our reading it would otherwise not be counted (issue 16 item 7).
			if err := send(workerMessage{Type: "marked"}); err != nil {
				return err
			}
		case "post":
			if g == nil {
				return errors.New("post before open")
			}
			// The posts run beside the next commands: the parent asks for progress meanwhile.
			go func() {
				pc, err := g.Post(cmd.Duration)
				m := workerMessage{Type: "posted", Posts: &pc}
				if err != nil {
					m = workerMessage{Type: "error", Error: err.Error()}
				}
				send(m)
			}()
		case "finish":
			if g == nil {
				return errors.New("finish before open")
			}
			c, err := g.Take()
			if err != nil {
				send(workerMessage{Type: "error", Error: err.Error()})
				return err
			}
			if err := send(workerMessage{Type: "result", Counts: c}); err != nil {
				return err
			}
		case "close":
			return nil
		default:
			return fmt.Errorf("unknown command %q", cmd.Op)
		}
	}
	return sc.Err()
}

// group is a share of the watchers: in this process, or in a worker process.
type group interface {
	// Mark starts counting the load's events; when it returns, every event received later is
	// counted.
	Mark() error
	// Counts returns the counters so far, for progress; a group in another process reports them
	// every progressEvery.
	Counts() Counts
	// Take returns the counters with the samples not yet taken, each handed over once. An error
	// says the group could not hand them over: the run cannot be measured without them.
	Take() (Counts, error)
	// Post posts the group's couriers' positions for dur (location workload) and returns what
	// they did.
	Post(dur time.Duration) (PostCounts, error)
	// Err is the group's failure so far, if it has failed: it cannot hold its watchers.
	Err() error
	Close()
}

// remoteGroup is a group run by a bench-worker child process.
type remoteGroup struct {
	cmd   *exec.Cmd // nil in tests, which speak the protocol over pipes
	stdin io.WriteCloser
	enc   *json.Encoder

	mu      sync.Mutex
	last    Counts
	err     error         // the first failure the worker reported or its output showed
	failed  chan struct{} // closed with err set
	marked  chan struct{}
	results chan Counts
	posted  chan PostCounts
	done    chan struct{} // closed when the worker's output ends
}

// finishTimeout bounds the wait for a worker's counts and samples.
const finishTimeout = 30 * time.Second

// startWorker re-executes exe as a bench-worker and has it open spec's watchers.
func startWorker(exe string, spec GroupSpec, stderr io.Writer) (*remoteGroup, error) {
	cmd := exec.Command(exe, "bench-worker")
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start bench worker: %w", err)
	}
	g := newRemoteGroup(cmd, stdin, stdout)
	if err := g.send(workerCommand{Op: "open", Spec: &spec}); err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}

// newRemoteGroup speaks to a worker whose commands go to stdin and whose messages come from
// stdout.
func newRemoteGroup(cmd *exec.Cmd, stdin io.WriteCloser, stdout io.Reader) *remoteGroup {
	g := &remoteGroup{cmd: cmd, stdin: stdin, enc: json.NewEncoder(stdin), failed: make(chan struct{}),
		marked: make(chan struct{}, 1), results: make(chan Counts, 1), posted: make(chan PostCounts, 1), done: make(chan struct{})}
	go g.read(stdout)
	return g
}

func (g *remoteGroup) read(r io.Reader) {
	defer close(g.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 256<<20) // a result carries every latency sample
	defer func() {
		// A line too long for the buffer, or a broken pipe, ends the messages as surely as an
		// error the worker sends.
		if err := sc.Err(); err != nil {
			g.fail(fmt.Errorf("bench worker: read its messages: %w", err))
		}
	}()
	for sc.Scan() {
		var m workerMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			g.fail(fmt.Errorf("bench worker: %w", err))
			return
		}
		switch m.Type {
		case "progress":
			g.mu.Lock()
			g.last = m.Counts
			g.mu.Unlock()
		case "marked":
			g.marked <- struct{}{}
		case "result":
			g.results <- m.Counts
		case "posted":
			if m.Posts != nil {
				g.posted <- *m.Posts
			}
		case "error":
			g.fail(errors.New("bench worker: " + m.Error))
		}
	}
}

// fail records the worker's first failure and wakes whoever waits for an answer.
func (g *remoteGroup) fail(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err == nil {
		g.err = err
		close(g.failed)
	}
}

// ended is the error of a worker that failed, or whose messages ended, before answering what.
func (g *remoteGroup) ended(what string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return fmt.Errorf("bench worker ended before %s: %w", what, errors.Join(g.err, errors.New("no answer")))
}

func (g *remoteGroup) send(c workerCommand) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.enc.Encode(c)
}

// markTimeout bounds the wait for a worker to confirm the mark.
const markTimeout = 30 * time.Second

// Mark tells the worker to start counting and waits until it has.
func (g *remoteGroup) Mark() error {
	if err := g.send(workerCommand{Op: "mark"}); err != nil {
		return fmt.Errorf("mark bench worker: %w", err)
	}
	select {
	case <-g.marked:
		return nil
	case <-g.done:
		return g.ended("confirming the mark")
	case <-time.After(markTimeout):
		return fmt.Errorf("bench worker did not confirm the mark within %s", markTimeout)
	}
}

// Counts returns the counters of the worker's last progress report.
func (g *remoteGroup) Counts() Counts {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.last
}

// Err is the worker's failure, or its end, if either came: a worker that failed or exited
// while its watchers opened holds none of them, and waiting out the opening is pointless.
func (g *remoteGroup) Err() error {
	select {
	case <-g.failed:
	case <-g.done:
	default:
		return nil
	}
	return g.ended("its watchers were open")
}

// Take asks the worker for its counters and samples and waits for them. Without them the
// step's deliveries and latencies would be those of the other groups only, so a worker that
// failed, ended or did not answer in time is an error.
func (g *remoteGroup) Take() (Counts, error) {
	if err := g.send(workerCommand{Op: "finish"}); err != nil {
		return Counts{}, fmt.Errorf("ask bench worker for its counts: %w", err)
	}
	select {
	case c := <-g.results:
		return c, nil
	case <-g.failed:
		return Counts{}, g.ended("sending its counts")
	case <-g.done:
		return Counts{}, g.ended("sending its counts")
	case <-time.After(finishTimeout):
		return Counts{}, fmt.Errorf("bench worker did not send its counts within %s", finishTimeout)
	}
}

// Post has the worker post its couriers' positions for dur and waits for what they did.
func (g *remoteGroup) Post(dur time.Duration) (PostCounts, error) {
	if err := g.send(workerCommand{Op: "post", Duration: dur}); err != nil {
		return PostCounts{}, fmt.Errorf("start bench worker's posts: %w", err)
	}
	// The schedule stops by itself within twice its length plus 5 s; each post within postTimeout.
	select {
	case pc := <-g.posted:
		return pc, nil
	case <-g.failed:
		return PostCounts{}, g.ended("its posts ended")
	case <-g.done:
		return PostCounts{}, g.ended("its posts ended")
	case <-time.After(2*dur + 5*time.Second + postTimeout + 30*time.Second):
		return PostCounts{}, errors.New("bench worker did not finish posting")
	}
}

func (g *remoteGroup) Close() {
	g.send(workerCommand{Op: "close"})
	g.stdin.Close()
	if g.cmd == nil {
		return
	}
	select {
	case <-g.done:
	case <-time.After(30 * time.Second):
		g.cmd.Process.Kill()
	}
	g.cmd.Wait()
}

// RaiseFileLimit lifts the soft limit of open files to the hard limit: every watcher is a
// socket. It is best effort; the limit in force shows in the report.
func RaiseFileLimit() uint64 {
	return raiseFileLimit()
}
