// Package order places orders: it joins the sale rules, the admission gate and
// the store, and owns the errors a buyer can get back.
package order

import (
	"errors"
	"time"

	"github.com/google/uuid"
)

// Errors a buyer can get back, owned here.
var (
	// ErrSaleNotActive: the product has no sale open right now.
	ErrSaleNotActive = errors.New("sale is not active")
	// ErrSoldOut: no stock is left.
	ErrSoldOut = errors.New("sold out")
	// ErrAlreadyOrdered: the user already has an order in this sale.
	ErrAlreadyOrdered = errors.New("already ordered in this sale")
	// ErrNotFound: no such order.
	ErrNotFound = errors.New("order not found")
)

// Status is how far an order has got.
type Status int

// Order statuses. Only Confirmed orders are in PostgreSQL.
const (
	StatusPending Status = iota + 1
	StatusConfirmed
	StatusRejected
)

func (s Status) String() string {
	switch s {
	case StatusPending:
		return "PENDING"
	case StatusConfirmed:
		return "CONFIRMED"
	case StatusRejected:
		return "REJECTED"
	}
	return "UNSPECIFIED"
}

// Order is one unit of a product bought by one user in one sale.
type Order struct {
	ID        uuid.UUID
	SaleID    uuid.UUID
	ProductID uuid.UUID
	UserID    uuid.UUID
	Status    Status
	CreatedAt time.Time
}

// ListFilter selects orders, newest first. A zero UserID means every user's
// and a zero SaleID every sale's; After is the last id of the previous page
// (uuid.Nil for the first) and Limit caps the page.
type ListFilter struct {
	UserID uuid.UUID
	SaleID uuid.UUID
	After  uuid.UUID
	Limit  int
}

// AlreadyOrderedError is ErrAlreadyOrdered with the order the user holds in
// the sale (committed, or admitted and on its way), so a winner who retries
// learns their order id instead of being told they lost.
type AlreadyOrderedError struct{ OrderID uuid.UUID }

func (e *AlreadyOrderedError) Error() string { return ErrAlreadyOrdered.Error() }

// Is makes errors.Is(err, ErrAlreadyOrdered) hold.
func (e *AlreadyOrderedError) Is(target error) bool { return target == ErrAlreadyOrdered }

// ErrOutcomeUnknown: the order was sent to PostgreSQL but the answer was lost
// (the connection broke after COMMIT was sent) and could not be learnt in
// time. The order may or may not be stored; the caller should check it
// (CheckOrder) or retry, which answers the truth once it is known.
var ErrOutcomeUnknown = errors.New("order outcome unknown; check the order")

// ErrInProgress: the user's earlier attempt in this sale was admitted and is
// being written right now (sync mode); retry shortly for its outcome.
var ErrInProgress = errors.New("an earlier order of this user is still being written")

// ErrNotReplicated: queue mode, the order was admitted (or the user's
// earlier order found) but Redis did not confirm in time that a replica
// holds it (ORDERS_QUEUE_MIN_REPLICAS), so it is not acknowledged: a
// failover of the Redis master now could lose it. Retrying is safe: the
// retry is answered ALREADY_ORDERED with the same order if it survived,
// and is admitted afresh if it did not.
var ErrNotReplicated = errors.New("order not confirmed on a Redis replica in time; retry for its outcome")

// OrderError is ErrOutcomeUnknown, ErrInProgress or ErrNotReplicated with
// the order concerned.
type OrderError struct {
	Err     error
	OrderID uuid.UUID
}

func (e *OrderError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *OrderError) Unwrap() error { return e.Err }
