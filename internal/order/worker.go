package order

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
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
// it reads a batch, stores it in one transaction and acknowledges the entries
// only after the commit. A worker that dies before acknowledging leaves its
// entries pending; another (or it, restarted) claims them after claimIdle and
// stores them again, which changes nothing, since the store is idempotent by
// order id.
type Worker struct {
	queue     Queue
	store     BatchStore
	gate      Gate
	consumer  string
	batchSize int
	claimIdle time.Duration
	log       *slog.Logger
}

// NewWorker returns a Worker reading up to batchSize entries at a time from q
// as consumer (unique per running worker), storing them in store and giving
// units back to gate when the store turns an order down. Entries pending for
// longer than claimIdle under another consumer are taken over. A nil log
// means slog.Default().
func NewWorker(q Queue, store BatchStore, gate Gate, consumer string, batchSize int, claimIdle time.Duration, log *slog.Logger) *Worker {
	if log == nil {
		log = slog.Default()
	}
	return &Worker{
		queue:     q,
		store:     store,
		gate:      gate,
		consumer:  consumer,
		batchSize: max(1, batchSize),
		claimIdle: claimIdle,
		log:       log.With("consumer", consumer),
	}
}

// Run reads, stores and acknowledges batches until ctx ends, then returns nil
// once the batch in hand is settled. Failures of the queue or the store are
// logged and retried after a backoff; they do not end Run.
func (w *Worker) Run(ctx context.Context) error {
	backoff := workerBackoffMin
	for ctx.Err() == nil {
		qs, err := w.queue.Read(ctx, w.consumer, w.batchSize, workerBlock, w.claimIdle)
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
		if len(qs) > 0 {
			w.process(ctx, qs)
		}
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
			return
		}
	}

	settleCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), workerBatchTimeout)
	defer cancel()
	ack := make([]QueuedOrder, 0, len(qs))
	for i, q := range qs {
		if w.settle(settleCtx, q.Order, results[i]) {
			ack = append(ack, q)
		}
	}
	if len(ack) == 0 {
		return
	}
	if err := w.queue.Ack(settleCtx, ack); err != nil {
		// Harmless but for the delay: a claim stores them again, changing nothing.
		w.log.Error("order queue ack", "entries", len(ack), "err", err)
	}
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

// settle does what o's store result calls for, and reports whether o's entry
// may be acknowledged: when it failed, the entry stays pending so that it is
// settled again later (Reject and Release must bear repeating).
func (w *Worker) settle(ctx context.Context, o Order, result error) bool {
	if result == nil {
		return true // committed (now or before)
	}
	if err := w.queue.Reject(ctx, o); err != nil {
		w.log.Error("order reject", "order", o.ID, "err", err)
		return false
	}
	var err error
	switch {
	case errors.Is(result, ErrSoldOut):
		// PostgreSQL had no unit for it, so there is none to give back.
		return true
	case errors.Is(result, ErrAlreadyOrdered):
		// The user holds another order in the sale: the unit this one took
		// goes back to the stock, and the user stays a buyer.
		err = w.gate.Release(ctx, o, false)
	default:
		// No such sale or user: the order can never be stored. Give its unit
		// back and forget the admission.
		w.log.Warn("order rejected by the store", "order", o.ID, "err", result)
		err = w.gate.Release(ctx, o, true)
	}
	if err != nil {
		w.log.Error("gate release", "order", o.ID, "err", err)
		return false
	}
	return true
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
