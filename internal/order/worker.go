package order

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Worker timings.
const (
	// workerBlock is how long one Read waits for new entries.
	workerBlock = time.Second
	// workerBackoffMin and workerBackoffMax bound the wait before retrying
	// after the queue or the store failed; it doubles between them.
	workerBackoffMin = 100 * time.Millisecond
	workerBackoffMax = 5 * time.Second
	// workerBatchTimeout bounds storing and settling one batch, which goes on
	// when Run's context ends so that a batch read is not left half done.
	workerBatchTimeout = 30 * time.Second
)

// Worker persists the orders the gate admitted into the queue (queue mode):
// it reads a batch, stores it in one transaction and settles the entries
// (acknowledges them) only after the commit. A worker that dies before acknowledging leaves its
// entries pending; another (or it, restarted) claims them after claimIdle and
// stores them again, which changes nothing, since the store is idempotent by
// order id.
type Worker struct {
	queue     Queue
	store     BatchStore
	gate      Settler
	consumer  string
	batchSize int
	claimIdle time.Duration
	log       *slog.Logger
	tracer    trace.Tracer // nil: batches are not traced
}

// WorkerOption changes a Worker's defaults.
type WorkerOption func(*Worker)

// WithWorkerTracerProvider traces each batch whose orders include one
// queued under a sampled span, in that order's trace (see batchSpans);
// without it, or with a nil tp, batches are not traced.
func WithWorkerTracerProvider(tp trace.TracerProvider) WorkerOption {
	return func(w *Worker) { w.tracer = tracerOf(tp) }
}

// NewWorker returns a Worker reading up to batchSize entries at a time from q
// as consumer (unique per running worker), storing them in store and
// settling them in gate. Entries pending for
// longer than claimIdle under another consumer are taken over. A nil log
// means slog.Default().
func NewWorker(q Queue, store BatchStore, gate Settler, consumer string, batchSize int, claimIdle time.Duration, log *slog.Logger, opts ...WorkerOption) *Worker {
	if log == nil {
		log = slog.Default()
	}
	w := &Worker{
		queue:     q,
		store:     store,
		gate:      gate,
		consumer:  consumer,
		batchSize: max(1, batchSize),
		claimIdle: claimIdle,
		log:       log.With("consumer", consumer),
	}
	for _, o := range opts {
		o(w)
	}
	return w
}

// Run reads, stores and acknowledges batches until ctx ends, then returns nil
// once the batch in hand is settled. Failures of the queue or the store are
// logged and retried after a backoff; they do not end Run.
func (w *Worker) Run(ctx context.Context) error {
	backoff := workerBackoffMin
	for ctx.Err() == nil {
		qs, err := w.queue.Read(ctx, w.consumer, w.batchSize, workerBlock, w.claimIdle)
		// What was read is stored even when another stream failed (one
		// shard of a Redis Cluster down, say); the failure is retried.
		if len(qs) > 0 {
			w.process(ctx, qs)
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			w.log.Error("order queue read", "err", err)
			waitOrDone(ctx, backoff)
			backoff = min(2*backoff, workerBackoffMax)
			continue
		}
		backoff = workerBackoffMin
	}
	return nil
}

// process stores one batch, retrying a failed transaction until it commits or
// ctx ends (its entries then stay pending, for a claim), and settles each
// entry by its order's result.
func (w *Worker) process(ctx context.Context, qs []QueuedOrder) {
	orders := make([]Order, len(qs))
	for i, q := range qs {
		orders[i] = q.Order
	}
	var spans *batchSpans
	if w.tracer != nil {
		parents := make([]trace.SpanContext, len(qs))
		for i, q := range qs {
			parents[i] = q.Trace
		}
		ctx, spans = startBatch(ctx, w.tracer, orders, parents)
	}
	var results []error
	for backoff := workerBackoffMin; ; backoff = min(2*backoff, workerBackoffMax) {
		var err error
		results, err = w.storeBatch(ctx, orders)
		if err == nil {
			break
		}
		// Not acknowledged: the entries stay pending and are stored again on
		// the next attempt, here or by whoever claims them.
		w.log.Error("order batch not stored; retrying", "orders", len(orders), "err", err)
		if !waitOrDone(ctx, backoff) {
			spans.end(nil, err)
			return
		}
	}

	// Settling acknowledges each entry in the same step as it records the
	// outcome (one script per product), so an entry is settled at most once.
	settleCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), workerBatchTimeout)
	defer cancel()
	settled := make([]Settlement, len(qs))
	for i, q := range qs {
		settled[i] = Settlement{Order: q.Order, Ref: q.Ref, Outcome: OutcomeOf(results[i])}
		if settled[i].Outcome == Dropped {
			w.log.Warn("order rejected by the store", "order", q.ID, "err", results[i])
		}
	}
	if err := w.gate.Settle(settleCtx, settled); err != nil {
		// Harmless but for the delay: the entries stay pending, and whoever
		// claims them stores them again, changing nothing, and settles them.
		w.log.Error("order batch not settled", "entries", len(qs), "err", err)
	}
	spans.end(results, nil)
}

// storeBatch stores orders once, finishing even when ctx ends meanwhile.
func (w *Worker) storeBatch(ctx context.Context, orders []Order) ([]error, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), workerBatchTimeout)
	defer cancel()
	results, err := w.store.OrderInsertBatch(ctx, orders)
	if err == nil && len(results) != len(orders) {
		err = fmt.Errorf("order batch: %d results for %d orders", len(results), len(orders))
	}
	return results, err
}

// waitOrDone waits for d, or less when ctx ends; it reports whether ctx is live.
func waitOrDone(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
