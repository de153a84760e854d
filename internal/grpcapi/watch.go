package grpcapi

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
)

// Defaults of the WatchSaleStatus caps (WATCH_MAX_STREAMS,
// WATCH_MAX_STREAMS_PER_IP).
const (
	DefaultWatchMaxStreams      = 10_000
	DefaultWatchMaxStreamsPerIP = 50
)

// ReasonTooManyStreams: the caller's address, or the server, holds as many
// open WatchSaleStatus streams as it may; close one or retry later.
const ReasonTooManyStreams = "TOO_MANY_STREAMS"

// Pacing of WatchSaleStatus: how often a sale's status is read, however
// many watch it, and the longest its watchers hear nothing (clients use
// server_time for their countdowns).
const (
	watchPoll      = 500 * time.Millisecond
	watchHeartbeat = 5 * time.Second
	// watchPollTimeout bounds one read of the status.
	watchPollTimeout = 5 * time.Second
	// watchRetryAfter is what a refused stream is told to wait.
	watchRetryAfter = 5 * time.Second
)

// statusFunc reads a product's sale status.
type statusFunc func(ctx context.Context, productID uuid.UUID) (*flashsalev1.GetSaleStatusResponse, error)

// watchHub serves WatchSaleStatus: it caps the open streams per client
// address and in all, and runs one feed per watched product, which reads
// the status every watchPoll and hands it to every watcher of the product
// when it changed (or after watchHeartbeat of silence). A thousand
// watchers of a sale cost one read every 500 ms, not a thousand, and one
// goroutine per stream (the call's own).
type watchHub struct {
	refused    *refusals
	read       statusFunc
	maxStreams int
	maxPerIP   int
	log        *slog.Logger

	mu      sync.Mutex
	streams int
	perIP   map[string]int // open streams by limitKey; no zero entries
	feeds   map[uuid.UUID]*feed
}

func newWatchHub(read statusFunc, maxStreams, maxPerIP int, log *slog.Logger) *watchHub {
	if maxStreams <= 0 {
		maxStreams = DefaultWatchMaxStreams
	}
	if maxPerIP <= 0 {
		maxPerIP = DefaultWatchMaxStreamsPerIP
	}
	return &watchHub{read: read, maxStreams: maxStreams, maxPerIP: maxPerIP, log: log,
		perIP: map[string]int{}, feeds: map[uuid.UUID]*feed{}}
}

// admit counts a new stream from client against the caps; release gives
// its place back. Past a cap it returns ResourceExhausted, reason
// TOO_MANY_STREAMS, with RetryInfo.
func (h *watchHub) admit(client string) (release func(), err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.streams >= h.maxStreams:
		h.refused.inc("watch")
		return nil, withDetails(codes.ResourceExhausted, "this server holds as many status streams as it may; retry later",
			reason(ReasonTooManyStreams), retryInfo(watchRetryAfter))
	case h.perIP[client] >= h.maxPerIP:
		h.refused.inc("watch ip")
		return nil, withDetails(codes.ResourceExhausted, "too many status streams open from your address; close one first",
			reason(ReasonTooManyStreams), retryInfo(watchRetryAfter))
	}
	h.streams++
	h.perIP[client]++
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.streams--
			if h.perIP[client]--; h.perIP[client] == 0 {
				delete(h.perIP, client)
			}
		})
	}, nil
}

// update is what a feed hands its watchers: a status, or the error that
// ended the feed.
type update struct {
	status *flashsalev1.GetSaleStatusResponse
	err    error
}

// watcher is one stream's mailbox: the latest update, a newer one
// replacing one not yet taken, so a slow client never holds up the feed.
type watcher struct {
	updates chan update
}

func (w *watcher) offer(u update) {
	select {
	case <-w.updates:
	default:
	}
	w.updates <- u // cannot block: one sender (under the hub's lock), the slot was just emptied
}

// feed reads one product's status for its watchers.
type feed struct {
	productID uuid.UUID
	cancel    context.CancelFunc
	done      chan struct{} // closed when run returns

	// Guarded by the hub's mu.
	watchers map[*watcher]struct{}
	latest   *flashsalev1.GetSaleStatusResponse // the last status read; nil before the first
}

// subscribe adds a watcher of productID, starting the product's feed if it
// has none. The watcher gets the latest status at once when the feed has
// one, else the feed's first.
func (h *watchHub) subscribe(productID uuid.UUID) (*watcher, *feed) {
	w := &watcher{updates: make(chan update, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.feeds[productID]
	if !ok {
		ctx, cancel := context.WithCancel(context.Background())
		f = &feed{productID: productID, cancel: cancel, done: make(chan struct{}), watchers: map[*watcher]struct{}{}}
		h.feeds[productID] = f
		go h.run(ctx, f)
	}
	f.watchers[w] = struct{}{}
	if f.latest != nil {
		w.offer(update{status: f.latest})
	}
	return w, f
}

// unsubscribe removes w from f; the last watcher to leave stops the feed
// and waits for its goroutine.
func (h *watchHub) unsubscribe(w *watcher, f *feed) {
	h.mu.Lock()
	delete(f.watchers, w)
	last := len(f.watchers) == 0
	if last && h.feeds[f.productID] == f {
		delete(h.feeds, f.productID)
	}
	h.mu.Unlock()
	if last {
		f.cancel()
		<-f.done
	}
}

// run reads f's status every watchPoll until its last watcher leaves,
// handing it out when it changed or watchHeartbeat passed. An error is
// handed to every watcher, which ends their streams with it, and ends the
// feed; the next watcher starts a new one.
func (h *watchHub) run(ctx context.Context, f *feed) {
	defer close(f.done)
	tick := time.NewTicker(watchPoll)
	defer tick.Stop()
	var sent *flashsalev1.GetSaleStatusResponse
	var sentAt time.Time
	for {
		pctx, cancel := context.WithTimeout(ctx, watchPollTimeout)
		st, err := h.read(pctx, f.productID)
		cancel()
		if ctx.Err() != nil {
			return
		}
		h.mu.Lock()
		switch {
		case err != nil:
			if h.feeds[f.productID] == f {
				delete(h.feeds, f.productID)
			}
			for w := range f.watchers {
				w.offer(update{err: err})
			}
		case sent == nil || changed(sent, st) || time.Since(sentAt) >= watchHeartbeat:
			sent, sentAt = st, time.Now()
			for w := range f.watchers {
				w.offer(update{status: st})
			}
		}
		f.latest = st
		h.mu.Unlock()
		if err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// changed reports whether a watcher should hear about b after a.
func changed(a, b *flashsalev1.GetSaleStatusResponse) bool {
	return a.GetState() != b.GetState() || a.GetRemaining() != b.GetRemaining() || a.GetFlashSaleId() != b.GetFlashSaleId()
}
