package order

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// BatchStore stores orders a batch at a time (group commit), for the Batcher
// and the Worker.
type BatchStore interface {
	// OrderInsertBatch stores orders in one transaction. results[i] is
	// orders[i]'s own outcome: nil when it is in the database (a replay of a
	// stored order included), ErrAlreadyOrdered, ErrSoldOut, or another
	// per-order error. err is a failure of the whole batch: then results is
	// nil and no order may be taken as stored.
	OrderInsertBatch(ctx context.Context, orders []Order) (results []error, err error)
}

// ErrBatcherClosed is returned by Batcher.Submit after Close.
var ErrBatcherClosed = errors.New("order batcher closed")

// DefaultBatchFlushers is how many batches a Batcher has in flight at once
// unless WithFlushers says otherwise. While one batch waits on its commit the
// next one fills; more than two buys little on a 2-core box (see
// BenchmarkBatcherSubmit) and only adds connections and row-lock waits.
const DefaultBatchFlushers = 2

// batchTimeout bounds one batch's transaction. Batches are not canceled with
// their submitters' contexts, as one submitter giving up must not fail the rest.
const batchTimeout = 10 * time.Second

// BatchError is a failure of a whole batch, as Submit returns it: unless it
// wraps ErrNotStored the batch may have committed.
type BatchError struct{ Err error }

func (e *BatchError) Error() string { return "order batch: " + e.Err.Error() }

// Unwrap returns Err.
func (e *BatchError) Unwrap() error { return e.Err }

// Settler records what became of in-flight orders (the gate).
type Settler interface {
	Settle(ctx context.Context, s []Settlement) error
}

// BatcherOption changes a Batcher's defaults.
type BatcherOption func(*Batcher)

// WithFlushers sets how many batches may be in flight at once (at least 1).
func WithFlushers(n int) BatcherOption {
	return func(b *Batcher) { b.flushers = max(1, n) }
}

// WithSettler makes the Batcher settle each batch's orders in the gate
// before their submitters learn the results (sync mode).
func WithSettler(g Settler) BatcherOption {
	return func(b *Batcher) { b.settler = g }
}

// WithTracerProvider traces each batch whose orders include a sampled one
// (see batchSpans); without it, or with a nil tp, batches are not traced.
func WithTracerProvider(tp trace.TracerProvider) BatcherOption {
	return func(b *Batcher) { b.tracer = tracerOf(tp) }
}

// Batcher groups orders submitted concurrently into batches, each stored in
// one transaction, so that many buyers share one commit. It is safe for
// concurrent use.
type Batcher struct {
	store    BatchStore
	maxSize  int
	maxWait  time.Duration
	flushers int
	settler  Settler
	log      *slog.Logger
	tracer   trace.Tracer // nil: batches are not traced

	in      chan request
	slots   chan struct{} // one token per batch in flight
	flushes sync.WaitGroup
	done    chan struct{} // closed when the collector has flushed its last batch

	mu     sync.RWMutex // guards closed against sends on the closed in
	closed bool
}

// request is one submitted order waiting for its batch's commit.
type request struct {
	ctx    context.Context
	order  Order
	replay bool       // written again to learn an earlier write's outcome
	at     time.Time  // when it was submitted; its batch leaves by at+maxWait
	result chan error // buffered, so a flusher never blocks on it
}

// NewBatcher returns a running Batcher that stores batches of up to maxSize
// orders (at least 1) in store, each leaving at most maxWait after its first
// order was submitted (sooner when full). A nil log means slog.Default().
// Close it to stop.
func NewBatcher(store BatchStore, maxSize int, maxWait time.Duration, log *slog.Logger, opts ...BatcherOption) *Batcher {
	maxSize = max(1, maxSize)
	if log == nil {
		log = slog.Default()
	}
	b := &Batcher{
		store:    store,
		maxSize:  maxSize,
		maxWait:  max(0, maxWait),
		flushers: DefaultBatchFlushers,
		log:      log,
		in:       make(chan request, maxSize),
		done:     make(chan struct{}),
	}
	for _, opt := range opts {
		opt(b)
	}
	b.slots = make(chan struct{}, b.flushers)
	go b.collect()
	return b
}

// Submit adds o to the next batch and waits for that batch's commit. It
// returns o's own result: nil once o is stored, ErrAlreadyOrdered, ErrSoldOut
// or another error of o, a *BatchError for its whole batch; ErrBatcherClosed
// after Close.
//
// When ctx ends first Submit returns ctx.Err() at once, but o may still be
// committed: its batch may already be on its way. An order whose ctx has
// ended before its batch leaves is dropped from it.
func (b *Batcher) Submit(ctx context.Context, o Order) error {
	return b.submit(ctx, o, false)
}

// Replay writes o again to learn the outcome of an earlier write whose
// batch failed without saying whether it committed: the answer is o's
// result, as for Submit. A batch failure of the replay tells nothing about
// the earlier write, so it leaves o in flight in the gate.
func (b *Batcher) Replay(ctx context.Context, o Order) error {
	return b.submit(ctx, o, true)
}

func (b *Batcher) submit(ctx context.Context, o Order, replay bool) error {
	r := request{ctx: ctx, order: o, replay: replay, at: time.Now(), result: make(chan error, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return ErrBatcherClosed
	}
	select {
	case b.in <- r:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-r.result:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops taking orders, stores those already submitted and waits for
// every batch in flight. Calling it again does nothing more.
func (b *Batcher) Close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.in)
	}
	b.mu.Unlock()
	<-b.done
}

// collect is the single collector: it waits for a free flusher, then gathers
// a batch (whatever queued up while the flushers were busy, then more until
// the batch is full or maxWait after its first order) and hands it over.
func (b *Batcher) collect() {
	defer close(b.done)
	defer b.flushes.Wait()
	for {
		b.slots <- struct{}{}
		first, ok := <-b.in
		if !ok {
			return
		}
		batch := make([]request, 1, b.maxSize)
		batch[0] = first
		open := b.fill(&batch, first.at.Add(b.maxWait))
		b.flushes.Go(func() {
			defer func() { <-b.slots }()
			b.flush(batch)
		})
		if !open {
			return
		}
	}
}

// fill appends requests to batch until it is full or the deadline passes. It
// reports false once the input is closed and drained.
func (b *Batcher) fill(batch *[]request, deadline time.Time) (open bool) {
	// Take what is queued already without arming a timer.
queued:
	for len(*batch) < b.maxSize {
		select {
		case r, ok := <-b.in:
			if !ok {
				return false
			}
			*batch = append(*batch, r)
		default:
			break queued
		}
	}
	if len(*batch) >= b.maxSize {
		return true
	}
	wait := time.Until(deadline)
	if wait <= 0 {
		return true
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for len(*batch) < b.maxSize {
		select {
		case r, ok := <-b.in:
			if !ok {
				return false
			}
			*batch = append(*batch, r)
		case <-timer.C:
			return true
		}
	}
	return true
}

// flush stores one batch and gives each submitter its own result.
func (b *Batcher) flush(batch []request) {
	live := make([]request, 0, len(batch))
	orders := make([]Order, 0, len(batch))
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.result <- err // its Submit has returned already
			continue
		}
		live = append(live, r)
		orders = append(orders, r.order)
	}
	if len(orders) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	var spans *batchSpans
	if b.tracer != nil {
		parents := make([]trace.SpanContext, len(live))
		for i, r := range live {
			parents[i] = trace.SpanContextFromContext(r.ctx)
		}
		ctx, spans = startBatch(ctx, b.tracer, orders, parents)
	}
	results, err := b.store.OrderInsertBatch(ctx, orders)
	if err == nil && len(results) != len(orders) {
		err = fmt.Errorf("%d results for %d orders", len(results), len(orders))
	}
	if err != nil {
		b.log.Error("order batch failed", "orders", len(orders), "err", err)
		err = &BatchError{Err: err}
	}
	b.settle(ctx, live, results, err)
	spans.end(results, err)
	for i, r := range live {
		if err != nil {
			r.result <- err
		} else {
			r.result <- results[i]
		}
	}
}

// settle tells the settler what became of the batch's orders. After a batch
// error that may have committed nothing is settled: the submitters write the
// orders again to learn the truth, or a reconcile finds it. Replays are not
// settled as dropped after a batch error, which says nothing of the write
// before.
func (b *Batcher) settle(ctx context.Context, batch []request, results []error, batchErr error) {
	if b.settler == nil || (batchErr != nil && !errors.Is(batchErr, ErrNotStored)) {
		return
	}
	s := make([]Settlement, 0, len(batch))
	for i, r := range batch {
		switch {
		case batchErr == nil:
			s = append(s, Settlement{Order: r.order, Outcome: OutcomeOf(results[i])})
		case !r.replay:
			s = append(s, Settlement{Order: r.order, Outcome: Dropped})
		}
	}
	if len(s) == 0 {
		return
	}
	if err := b.settler.Settle(ctx, s); err != nil {
		// The orders stay in flight; a reconcile settles them from PostgreSQL.
		b.log.Error("order batch not settled in the gate", "orders", len(s), "err", err)
	}
}

// OutcomeOf is the Outcome of an order from its store result.
func OutcomeOf(result error) Outcome {
	switch {
	case result == nil:
		return Committed
	case errors.Is(result, ErrSoldOut):
		return RejectedSoldOut
	case errors.Is(result, ErrAlreadyOrdered):
		return RejectedDuplicate
	}
	return Dropped
}
