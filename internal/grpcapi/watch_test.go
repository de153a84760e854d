package grpcapi

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
)

// countingStatus is a status source that counts its reads; remaining can
// be changed, and fail makes reads fail.
type countingStatus struct {
	reads     atomic.Int64
	remaining atomic.Int32
	fail      atomic.Bool
}

func (c *countingStatus) read(_ context.Context, productID uuid.UUID) (*flashsalev1.GetSaleStatusResponse, error) {
	c.reads.Add(1)
	if c.fail.Load() {
		return nil, errors.New("status unavailable")
	}
	return &flashsalev1.GetSaleStatusResponse{ProductId: productID.String(), Remaining: c.remaining.Load()}, nil
}

func next(t *testing.T, w *watcher) update {
	t.Helper()
	select {
	case u := <-w.updates:
		return u
	case <-time.After(5 * time.Second):
		t.Fatal("no update within 5s")
		return update{}
	}
}

// TestWatchHubFansOut: fifty watchers of one product cost one read per
// poll, all of them hear the first status and each change, and the feed's
// goroutine is gone once the last watcher leaves.
func TestWatchHubFansOut(t *testing.T) {
	src := &countingStatus{}
	src.remaining.Store(10)
	h := newWatchHub(src.read, 0, 0, slog.New(slog.DiscardHandler))
	product := uuid.New()
	type sub struct {
		w *watcher
		f *feed
	}
	subs := make([]sub, 50)
	for i := range subs {
		w, f := h.subscribe(product)
		subs[i] = sub{w, f}
	}
	for _, s := range subs {
		if u := next(t, s.w); u.err != nil || u.status.GetRemaining() != 10 {
			t.Fatalf("first update = %v, want 10 left", u)
		}
	}
	src.remaining.Store(9)
	for _, s := range subs {
		if u := next(t, s.w); u.err != nil || u.status.GetRemaining() != 9 {
			t.Fatalf("update after a change = %v, want 9 left", u)
		}
	}
	// Two polls (the first, the change) and maybe one more meanwhile; a
	// poll per watcher would be at least 100.
	if n := src.reads.Load(); n > 4 {
		t.Errorf("%d reads for 50 watchers over about one poll interval, want one per poll", n)
	}
	f := subs[0].f
	for _, s := range subs {
		h.unsubscribe(s.w, s.f)
	}
	select {
	case <-f.done:
	default:
		t.Error("the feed runs on after its last watcher left")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.feeds) != 0 {
		t.Errorf("hub keeps %d feeds with no watchers", len(h.feeds))
	}
}

// TestWatchHubError: a failed read ends every watcher's stream with the
// error, and the next watcher starts afresh.
func TestWatchHubError(t *testing.T) {
	src := &countingStatus{}
	h := newWatchHub(src.read, 0, 0, slog.New(slog.DiscardHandler))
	product := uuid.New()
	w1, f1 := h.subscribe(product)
	next(t, w1)
	w2, f2 := h.subscribe(product)
	if u := next(t, w2); u.err != nil || u.status == nil {
		t.Fatalf("a late watcher's first update = %v, want the latest status", u)
	}
	src.fail.Store(true)
	for _, w := range []*watcher{w1, w2} {
		if u := next(t, w); u.err == nil {
			t.Errorf("update after a failed read = %v, want the error", u)
		}
	}
	<-f1.done // the feed ended on its own
	src.fail.Store(false)
	w3, f3 := h.subscribe(product)
	if f3 == f1 {
		t.Fatal("a new watcher joined the ended feed")
	}
	if u := next(t, w3); u.err != nil {
		t.Errorf("new feed's first update = %v, want a status", u)
	}
	h.unsubscribe(w1, f1)
	h.unsubscribe(w2, f2)
	h.unsubscribe(w3, f3)
}

// TestWatchHubSlowWatcher: a watcher that takes nothing holds up no one;
// it finds the latest update when it looks.
func TestWatchHubSlowWatcher(t *testing.T) {
	w := &watcher{updates: make(chan update, 1)}
	for i := range 3 {
		w.offer(update{status: &flashsalev1.GetSaleStatusResponse{Remaining: int32(i)}})
	}
	if u := next(t, w); u.status.GetRemaining() != 2 {
		t.Errorf("slow watcher got %v, want the latest (2 left)", u)
	}
}

// TestWatchHubCaps: streams are capped per client and in all; release
// gives the place back, once however often it is called.
func TestWatchHubCaps(t *testing.T) {
	h := newWatchHub(nil, 3, 2, slog.New(slog.DiscardHandler))
	a1, err := h.admit("192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.admit("192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.admit("192.0.2.1"); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("3rd stream from one client (cap 2) = %v, want ResourceExhausted", err)
	}
	if _, err := h.admit("192.0.2.2"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.admit("192.0.2.3"); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("4th stream in all (cap 3) = %v, want ResourceExhausted", err)
	}
	a1()
	a1()
	if _, err := h.admit("192.0.2.3"); err != nil {
		t.Errorf("stream after one closed = %v, want it admitted", err)
	}
	if _, err := h.admit("192.0.2.4"); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("stream after a double release = %v, want ResourceExhausted (released once)", err)
	}
}
