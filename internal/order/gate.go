package order

import (
	"context"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale/internal/sale"
)

// Decision is the admission gate's answer to one order attempt.
type Decision int

// Gate decisions.
const (
	// Admitted: a unit of the product's stock was taken and the user
	// recorded as the sale's buyer, and the order recorded as in flight (in
	// queue mode appended to the product's stream), all in one step.
	Admitted Decision = iota + 1
	// DeniedSoldOut: no unit left.
	DeniedSoldOut
	// DeniedAlreadyAdmitted: the user holds an order in this sale, stored
	// or (queue mode) queued; Admit returns its id.
	DeniedAlreadyAdmitted
	// DeniedInProgress: sync mode, the user's admitted order is still being
	// written; Admit returns its id.
	DeniedInProgress
	// DeniedNotOpen: the sale is not open by the gate's clock.
	DeniedNotOpen
	// DeniedNotLoaded: the gate holds no state for the sale or its product;
	// Load it and retry.
	DeniedNotLoaded
	// DeniedBusy: queue mode only, the product's stream backlog is over its limit.
	DeniedBusy
)

// Admission is one order attempt put to the gate.
type Admission struct {
	Order Order     // ID, SaleID, ProductID, UserID, CreatedAt set
	Sale  sale.Sale // the sale open now, by the service's clock
	// Queue appends the admitted order to the product's stream in the same
	// step; otherwise it is recorded in flight until the writer settles it.
	Queue bool
	// MaxQueued is the stream backlog above which a queued attempt is DeniedBusy.
	MaxQueued int64
}

// Outcome is what became of an admitted order, as its writer settles it.
type Outcome int

// Outcomes, for Settle.
const (
	// Committed: the order is in PostgreSQL. The admission stays.
	Committed Outcome = iota + 1
	// RejectedSoldOut: PostgreSQL had no unit for it, so there is none to
	// give back; the user's admission is dropped.
	RejectedSoldOut
	// RejectedDuplicate: the user holds another order in the sale; the unit
	// goes back, the user stays a buyer.
	RejectedDuplicate
	// Dropped: the order was certainly not stored and never will be; the
	// unit goes back and the admission is dropped, so the user may retry.
	Dropped
)

// Settlement is one in-flight order's outcome.
type Settlement struct {
	Order   Order
	Ref     string // the stream entry (queue mode); empty in sync mode
	Outcome Outcome
}

// ProductState is a product's admission state in PostgreSQL, read in one
// consistent snapshot while the product's stock row is locked
// (Store.ProductSnapshot), so that no order of the product commits between
// the snapshot and the gate taking it in.
type ProductState struct {
	ProductID uuid.UUID
	// Quantity is the product's stock in PostgreSQL.
	Quantity int32
	// Sales are the product's sales that have not ended before the
	// snapshot's horizon, each with its buyers in PostgreSQL.
	Sales []SaleBuyers
	// OrphanedBefore: an order recorded in flight in sync mode, created
	// before this and not in PostgreSQL, was abandoned by its writer (the
	// process died) and will never be stored.
	OrphanedBefore time.Time
}

// SaleBuyers is a sale and its buyers in PostgreSQL (user id -> order id).
type SaleBuyers struct {
	Sale   sale.Sale
	Buyers map[uuid.UUID]uuid.UUID
}

// Gate decides order attempts atomically, ahead of PostgreSQL. Stock is the
// product's: every sale of a product admits from the same units. At every
// moment, units the gate may still admit plus orders admitted and not yet
// settled is at most the product's stock in PostgreSQL (see the README).
type Gate interface {
	// Admit decides one attempt; it never checks and then acts across round
	// trips. For DeniedAlreadyAdmitted and DeniedInProgress it returns the
	// order the user holds. In queue mode it may return Admitted or
	// DeniedAlreadyAdmitted with an error wrapping ErrNotReplicated: the
	// decision was taken but is not known to be on a replica yet.
	Admit(ctx context.Context, a Admission) (Decision, uuid.UUID, error)
	// Settle records what became of in-flight orders. Settling an order
	// that is no longer in flight does nothing, so it bears repeating.
	Settle(ctx context.Context, s []Settlement) error
	// Load applies st unless the gate holds the product's state and every
	// sale's in it.
	Load(ctx context.Context, st ProductState) error
	// Reconcile replaces the product's state with st plus the orders still
	// in flight, whatever the gate held, and returns the units it may admit.
	Reconcile(ctx context.Context, st ProductState) (remaining int32, err error)
	// Holder is the order the user holds in the sale, from process memory
	// when it can be (a client-side cached read); inProgress when it is being
	// written (sync mode). found is false when the user holds none.
	Holder(ctx context.Context, sl sale.Sale, userID uuid.UUID) (orderID uuid.UUID, inProgress, found bool, err error)
}

// QueuedOrder is an admitted order read back from a product's stream.
type QueuedOrder struct {
	Order
	// Ref identifies the stream entry, for Settle.
	Ref string
	// Trace is the span that queued the order when its trace is sampled,
	// so that the write joins that trace; invalid otherwise.
	Trace trace.SpanContext
}

// Queue is the streams of admitted orders that workers persist (queue mode).
type Queue interface {
	// Read returns up to count entries for consumer: entries idle for longer
	// than claimIdle under other (dead) consumers first, then new ones,
	// waiting up to block for any. With an error it may still return
	// entries (read from the streams that did not fail): they are the
	// consumer's to store and settle.
	Read(ctx context.Context, consumer string, count int, block, claimIdle time.Duration) ([]QueuedOrder, error)
}

// Admissions reads the gate's record of a user's admission in a sale.
type Admissions interface {
	// Pending is the user's admitted order in the sale, PENDING, or a
	// rejected one, REJECTED; ok is false when there is neither. A stored
	// order stays recorded, so callers look in PostgreSQL first.
	Pending(ctx context.Context, sl sale.Sale, userID uuid.UUID) (Order, bool, error)
}
