package groupcommit_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/groupcommit"
	"github.com/ordercast/ordercast/internal/testutil"
)

func change(id string) ordercast.Write {
	return ordercast.Write{Change: &ordercast.StatusChange{OrderID: id, Status: ordercast.StatusConfirmed}}
}

// TestBatches checks that writes queued while a batch commits go together in the next one, in
// order, and that a lone write is committed at once (the test would hang otherwise).
func TestBatches(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var batches [][]string
	w := groupcommit.Start(func(ctx context.Context, writes []ordercast.Write) ([]ordercast.WriteResult, error) {
		var ids []string
		for _, wr := range writes {
			ids = append(ids, wr.OrderID())
		}
		batches = append(batches, ids)
		if len(batches) == 1 {
			close(started)
			<-release
		}
		return make([]ordercast.WriteResult, len(writes)), nil
	}, 0, nil)
	t.Cleanup(w.Close)

	done := make(chan error, 4)
	go func() { done <- w.Do(t.Context(), change("lone")).Err }()
	<-started
	w.Hold(3)
	for i, id := range []string{"a", "b", "c"} {
		go func() { done <- w.Do(t.Context(), change(id)).Err }()
		w.WaitQueued(i + 1)
	}
	close(release)
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	want := [][]string{{"lone"}, {"a", "b", "c"}}
	if len(batches) != 2 || len(batches[1]) != 3 || batches[1][0] != "a" || batches[1][2] != "c" {
		t.Errorf("batches = %v, want %v", batches, want)
	}
	if b, n := w.Counts(); b != 2 || n != 4 {
		t.Errorf("Counts() = %d batches, %d writes; want 2 and 4", b, n)
	}
}

// TestClose checks that Close fails a batch in progress that outlasts the grace it is given and
// every queued write, and refuses writes after it.
func TestClose(t *testing.T) {
	started := make(chan struct{})
	w := groupcommit.Start(func(ctx context.Context, writes []ordercast.Write) ([]ordercast.WriteResult, error) {
		close(started)
		<-ctx.Done() // a commit that only Close ends
		return nil, ctx.Err()
	}, 0, nil)
	groupcommit.SetCloseGrace(w, time.Millisecond)
	errs := make(chan error, 2)
	go func() { errs <- w.Do(context.Background(), change("in-progress")).Err }()
	<-started
	w.Hold(1)
	go func() { errs <- w.Do(context.Background(), change("queued")).Err }()
	w.WaitQueued(1)
	w.Close()
	for range 2 {
		if err := <-errs; !errors.Is(err, groupcommit.ErrClosed) {
			t.Errorf("err = %v, want ErrClosed", err)
		}
	}
	if err := w.Do(context.Background(), change("late")).Err; !errors.Is(err, groupcommit.ErrClosed) {
		t.Errorf("write after Close: err = %v, want ErrClosed", err)
	}
}

// TestCloseFinishesTheBatchInProgress: Close lets a batch that is committing finish with its
// context intact, and its writes get the batch's outcome: a write that commits is never answered
// "closed".
func TestCloseFinishesTheBatchInProgress(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	ctxErr := make(chan error, 1)
	w := groupcommit.Start(func(ctx context.Context, writes []ordercast.Write) ([]ordercast.WriteResult, error) {
		close(started)
		<-release
		ctxErr <- ctx.Err()
		return make([]ordercast.WriteResult, len(writes)), nil
	}, 0, nil)
	done := make(chan error, 1)
	go func() { done <- w.Do(context.Background(), change("in-progress")).Err }()
	<-started
	closed := make(chan struct{})
	go func() {
		w.Close()
		close(closed)
	}()
	// Close has begun once a write is refused at once; a probe that finds the writer still
	// open gives up after a moment, leaving the queue.
	testutil.WaitFor(t, "Close to begin", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		defer cancel()
		return errors.Is(w.Do(ctx, change("probe")).Err, groupcommit.ErrClosed)
	})
	close(release)
	if err := <-ctxErr; err != nil {
		t.Errorf("the batch in progress was cancelled: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("the write in progress: %v, want its commit", err)
	}
	<-closed
}

// TestCancelWhileQueued: a write whose caller gives up while it is queued leaves the queue and
// is never committed; one already in a batch is answered with the batch's outcome.
func TestCancelWhileQueued(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var committed []string
	w := groupcommit.Start(func(ctx context.Context, writes []ordercast.Write) ([]ordercast.WriteResult, error) {
		for _, wr := range writes {
			committed = append(committed, wr.OrderID())
		}
		if len(committed) == 1 {
			close(started)
			<-release
		}
		return make([]ordercast.WriteResult, len(writes)), nil
	}, 0, nil)
	t.Cleanup(w.Close)

	ctx, cancel := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() { first <- w.Do(ctx, change("taken")).Err }()
	<-started
	w.Hold(1)
	queued := make(chan error, 1)
	go func() { queued <- w.Do(ctx, change("queued")).Err }()
	w.WaitQueued(1)
	cancel()
	if err := <-queued; !errors.Is(err, context.Canceled) {
		t.Errorf("queued write: err = %v, want context.Canceled", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("write in the batch when its caller gave up: err = %v, want its commit's nil", err)
	}
	if err := w.Do(t.Context(), change("after")).Err; err != nil {
		t.Fatal(err)
	}
	if want := []string{"taken", "after"}; len(committed) != 2 || committed[0] != want[0] || committed[1] != want[1] {
		t.Errorf("committed %v, want %v", committed, want)
	}
}

// TestSecondCloseWaitsForTheFirst: a Close called while another is stopping the writer returns
// only once the writer has stopped, so that a store which closes its database after Close never
// takes the connection from under a batch still committing. In a synctest bubble, "has not
// returned" is a fact, not a guess: synctest.Wait returns once every goroutine is blocked.
func TestSecondCloseWaitsForTheFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var committed atomic.Bool
		w := groupcommit.Start(func(ctx context.Context, writes []ordercast.Write) ([]ordercast.WriteResult, error) {
			<-release
			committed.Store(true)
			return make([]ordercast.WriteResult, len(writes)), nil
		}, 0, nil)
		written := make(chan error, 1)
		go func() { written <- w.Do(context.Background(), change("in-progress")).Err }()
		synctest.Wait() // the batch is committing

		var first, second atomic.Bool
		go func() {
			w.Close()
			first.Store(true)
		}()
		synctest.Wait() // the first Close waits for the batch
		go func() {
			w.Close()
			second.Store(true)
		}()
		synctest.Wait()
		if first.Load() || second.Load() {
			t.Errorf("a Close returned while the batch was committing (first %v, second %v)", first.Load(), second.Load())
		}

		close(release)
		synctest.Wait()
		if !first.Load() || !second.Load() {
			t.Fatalf("Close still waiting after the batch committed (first %v, second %v)", first.Load(), second.Load())
		}
		if err := <-written; err != nil || !committed.Load() {
			t.Errorf("the write in progress: err %v, committed %v; want its commit", err, committed.Load())
		}
	})
}

// TestUpkeepRunsBetweenBatches: the writer's upkeep runs after a batch's writes are answered
// (a write never waits for it) and before the next batch is taken (it has the store to itself).
func TestUpkeepRunsBetweenBatches(t *testing.T) {
	inUpkeep, release := make(chan struct{}), make(chan struct{})
	var commits atomic.Int32
	w := groupcommit.Start(func(ctx context.Context, writes []ordercast.Write) ([]ordercast.WriteResult, error) {
		commits.Add(1)
		return make([]ordercast.WriteResult, len(writes)), nil
	}, 0, func() {
		if commits.Load() == 1 {
			close(inUpkeep)
			<-release
		}
	})
	t.Cleanup(w.Close)
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(free) // before Close, which waits for the upkeep, when the test fails early
	first := make(chan error, 1)
	go func() { first <- w.Do(t.Context(), change("first")).Err }()
	<-inUpkeep
	select { // answered while the upkeep still runs
	case err := <-first:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(testutil.WaitTimeout):
		t.Fatal("the write was not answered while the upkeep ran: it waited for it")
	}
	second := make(chan error, 1)
	go func() { second <- w.Do(t.Context(), change("second")).Err }()
	w.WaitQueued(1)
	if n := commits.Load(); n != 1 {
		t.Fatalf("%d batches committed while the upkeep ran, want the second to wait for it", n)
	}
	free()
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if n := commits.Load(); n != 2 {
		t.Fatalf("%d batches committed, want 2", n)
	}
}

// TestAFailedBatchFailsWhatWaitedBehindIt: a batch that fails as a whole says the store is away.
// The writes queued behind it each waited out an attempt of their own (a PostgreSQL that stopped
// answering: 10 s, then 10 s more, where a 503 is promised after 10), and a request of many
// writes had its later ones committed without the earlier, a later change of an order judged
// without the one it follows (placed → preparing, its confirmed lost). Everything queued when a
// batch fails is answered with its error, untried; a write queued after it is tried as ever.
func TestAFailedBatchFailsWhatWaitedBehindIt(t *testing.T) {
	away := ordercast.Errorf(ordercast.EUnavailable, "store is busy")
	var mu sync.Mutex
	var committed [][]string
	w := groupcommit.Start(func(ctx context.Context, writes []ordercast.Write) ([]ordercast.WriteResult, error) {
		var ids []string
		for _, wr := range writes {
			ids = append(ids, wr.OrderID())
		}
		mu.Lock()
		defer mu.Unlock()
		committed = append(committed, ids)
		if len(committed) == 1 {
			return nil, away
		}
		return make([]ordercast.WriteResult, len(writes)), nil
	}, 2, nil)
	t.Cleanup(w.Close)

	w.Hold(5)
	many := make(chan []ordercast.WriteResult, 1)
	go func() {
		many <- w.DoMany(t.Context(), []ordercast.Write{change("a"), change("b"), change("c"), change("a")})
	}()
	w.WaitQueued(4)
	other := make(chan error, 1)
	go func() { other <- w.Do(t.Context(), change("z")).Err }()
	results := <-many
	for i, res := range results {
		if !errors.Is(res.Err, away) || ordercast.ErrorCode(res.Err) != ordercast.EUnavailable {
			t.Errorf("write %d of the request answered %v, want the failed batch's error", i, res.Err)
		}
	}
	if err := <-other; !errors.Is(err, away) {
		t.Errorf("the write queued behind answered %v, want the failed batch's error", err)
	}
	if err := w.Do(t.Context(), change("y")).Err; err != nil {
		t.Errorf("a write after the failure answered %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(committed) != 2 || len(committed[1]) != 1 || committed[1][0] != "y" {
		t.Errorf("batches tried: %v; want [a b], then y alone", committed)
	}
}
