package order

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/sale"
)

// Decision is the admission gate's answer to one order attempt.
type Decision int

// Gate decisions.
const (
	// Admitted: a stock token was taken and the user recorded (and, in queue
	// mode, the order appended to the sale's stream), all in one step.
	Admitted Decision = iota + 1
	// DeniedSoldOut: no token left.
	DeniedSoldOut
	// DeniedAlreadyAdmitted: the user was admitted to this sale before.
	DeniedAlreadyAdmitted
	// DeniedNotOpen: the sale is not open by the gate's clock.
	DeniedNotOpen
	// DeniedNotLoaded: the gate holds no state for the sale; Load it and retry.
	DeniedNotLoaded
	// DeniedBusy: queue mode only, the sale's stream backlog is over its limit.
	DeniedBusy
)

// Admission is one order attempt put to the gate.
type Admission struct {
	Order Order     // ID, SaleID, ProductID, UserID, CreatedAt set
	Sale  sale.Sale // the sale open now, by the service's clock
	// Queue appends the admitted order to the sale's stream in the same step.
	Queue bool
	// MaxQueued is the stream backlog above which a queued attempt is DeniedBusy.
	MaxQueued int64
}

// GateState is a sale's admission state, computed from PostgreSQL (the truth)
// when the gate loads or reconciles a sale.
type GateState struct {
	Sale      sale.Sale
	Remaining int32
	// Buyers maps each user who holds (or is about to hold) an order in the
	// sale to that order's id.
	Buyers map[uuid.UUID]uuid.UUID
}

// Gate decides order attempts atomically, ahead of PostgreSQL.
type Gate interface {
	// Admit decides one attempt; it never checks and then acts across round trips.
	Admit(ctx context.Context, a Admission) (Decision, error)
	// Release gives back the unit an admitted order took. With forget, the
	// user's admission is dropped too, so they may try again.
	Release(ctx context.Context, o Order, forget bool) error
	// Load sets a sale's state unless the gate already holds it.
	Load(ctx context.Context, st GateState) error
	// Reconcile replaces a sale's state, whatever the gate holds.
	Reconcile(ctx context.Context, st GateState) error
}

// QueuedOrder is an admitted order read back from a sale's stream.
type QueuedOrder struct {
	Order
	// Ref identifies the stream entry, for Ack.
	Ref string
}

// Queue is the stream of admitted orders that workers persist (queue mode).
type Queue interface {
	// Read returns up to count entries for consumer: entries idle for longer
	// than claimIdle under other (dead) consumers first, then new ones,
	// waiting up to block for any.
	Read(ctx context.Context, consumer string, count int, block, claimIdle time.Duration) ([]QueuedOrder, error)
	// Ack removes entries once their orders are committed (or rejected).
	Ack(ctx context.Context, qs []QueuedOrder) error
	// Reject records an order as REJECTED, so CheckOrder can say so.
	Reject(ctx context.Context, o Order) error
	// Pending is the user's admitted order in the sale that is neither
	// committed nor acknowledged yet, with its status (PENDING or REJECTED).
	Pending(ctx context.Context, saleID, userID uuid.UUID) (Order, bool, error)
}
