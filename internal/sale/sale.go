// Package sale holds the rules of a flash sale window: when a sale is open,
// what state it is in, and which windows are acceptable. It does no I/O; the
// caller passes the current time in.
package sale

import (
	"errors"
	"time"

	"github.com/google/uuid"
)

// Errors returned by the sale rules and by stores of sales.
var (
	// ErrNotFound: no such sale (or the product has no sale at all).
	ErrNotFound = errors.New("flash sale not found")
	// ErrInvalidWindow: ends_at is not after starts_at.
	ErrInvalidWindow = errors.New("sale must end after it starts")
	// ErrEndsInPast: the window is already over when it is created.
	ErrEndsInPast = errors.New("sale must not end in the past")
	// ErrOverlap: the window overlaps another sale of the same product.
	ErrOverlap = errors.New("sale overlaps another sale of the same product")
)

// State is where a sale stands at a given instant.
type State int

// The states of a sale. The zero value is not a state.
const (
	StateUpcoming State = iota + 1
	StateActive
	StateEnded
	StateSoldOut
)

func (s State) String() string {
	switch s {
	case StateUpcoming:
		return "UPCOMING"
	case StateActive:
		return "ACTIVE"
	case StateEnded:
		return "ENDED"
	case StateSoldOut:
		return "SOLD_OUT"
	}
	return "UNSPECIFIED"
}

// Sale is a window [StartsAt, EndsAt) in which one product can be ordered,
// one unit per user.
type Sale struct {
	ID        uuid.UUID
	ProductID uuid.UUID
	StartsAt  time.Time
	EndsAt    time.Time
	CreatedAt time.Time
}

// OpenAt reports whether now falls in the half-open window [StartsAt, EndsAt).
// It is the one place the window rule is written down.
func (s Sale) OpenAt(now time.Time) bool {
	return !now.Before(s.StartsAt) && now.Before(s.EndsAt)
}

// StateAt is the sale's state at now given the product's remaining stock:
// UPCOMING before the window, ENDED from its end on, and inside it ACTIVE,
// or SOLD_OUT when nothing is left.
func (s Sale) StateAt(now time.Time, remaining int32) State {
	switch {
	case now.Before(s.StartsAt):
		return StateUpcoming
	case !s.OpenAt(now):
		return StateEnded
	case remaining <= 0:
		return StateSoldOut
	default:
		return StateActive
	}
}

// ValidateWindow checks a new sale's window at creation time. Overlap with
// other sales is checked by the store, which owns the data.
func ValidateWindow(startsAt, endsAt, now time.Time) error {
	if !endsAt.After(startsAt) {
		return ErrInvalidWindow
	}
	if !endsAt.After(now) {
		return ErrEndsInPast
	}
	return nil
}

// Current picks, among a product's sales, the one a buyer cares about at now:
// the open one, else the next to start, else the one that ended last.
// ok is false when sales is empty.
func Current(sales []Sale, now time.Time) (s Sale, ok bool) {
	var next, last *Sale
	for i := range sales {
		c := &sales[i]
		switch {
		case c.OpenAt(now):
			return *c, true
		case now.Before(c.StartsAt):
			if next == nil || c.StartsAt.Before(next.StartsAt) {
				next = c
			}
		default:
			if last == nil || c.EndsAt.After(last.EndsAt) {
				last = c
			}
		}
	}
	if next != nil {
		return *next, true
	}
	if last != nil {
		return *last, true
	}
	return Sale{}, false
}

// ListFilter selects sales by where their window stands at Now: Upcoming
// (starts after Now), Active (open at Now, sold out or not), Ended (ended at
// or before Now). Results come soonest first, After is the last id of the
// previous page (uuid.Nil for the first) and Limit caps the page.
type ListFilter struct {
	Now                     time.Time
	Upcoming, Active, Ended bool
	After                   uuid.UUID
	Limit                   int
}
