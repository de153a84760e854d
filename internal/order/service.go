package order

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/product"
	"github.com/flashsale/flashsale/internal/sale"
)

// Store is what the order service needs from the database.
type Store interface {
	ProductGet(ctx context.Context, id uuid.UUID) (product.Product, error)
	SaleOpen(ctx context.Context, productID uuid.UUID, now time.Time) (sale.Sale, error)
	SaleGet(ctx context.Context, id uuid.UUID) (sale.Sale, error)
	SalesByProduct(ctx context.Context, productID uuid.UUID) ([]sale.Sale, error)
	OrderPlace(ctx context.Context, o Order) (Order, error)
	OrderBySaleUser(ctx context.Context, saleID, userID uuid.UUID) (Order, error)
	OrderList(ctx context.Context, f ListFilter) ([]Order, error)
}

// Submitter writes an admitted order and waits for its commit (a Batcher).
type Submitter interface {
	Submit(ctx context.Context, o Order) error
}

// Mode is how an order reaches PostgreSQL.
type Mode string

// Order modes.
const (
	// ModeDirect: one transaction per order, no Redis.
	ModeDirect Mode = "direct"
	// ModeSync: the Redis gate admits, the batcher writes many orders per
	// transaction, and the call returns CONFIRMED after the commit.
	ModeSync Mode = "sync"
	// ModeQueue: the Redis gate admits and appends to the sale's stream in
	// one step; the call returns PENDING and workers write the stream.
	ModeQueue Mode = "queue"
)

// ErrUnavailable: an admitted order could not be written (PostgreSQL down);
// its admission was released, so the caller may retry.
var ErrUnavailable = errors.New("orders are temporarily unavailable")

// BusyError: queue mode's backlog is over its limit; retry after RetryAfter.
type BusyError struct{ RetryAfter time.Duration }

func (e *BusyError) Error() string { return "order queue is busy" }

// StatusCache says from process memory (a client-side cached key that Redis
// invalidates when it changes) whether a sale has sold out.
type StatusCache interface {
	SoldOut(ctx context.Context, saleID uuid.UUID) bool
}

// Config picks the mode and its parts; direct mode needs none of them.
type Config struct {
	Mode    Mode
	Gate    Gate      // sync and queue
	Batcher Submitter // sync
	Queue   Queue     // queue: CheckOrder reads PENDING/REJECTED from it
	// Status, when set, answers "sold out?" from process memory before the
	// gate is asked (sync and queue).
	Status     StatusCache
	MaxQueued  int64 // queue: backlog above which PlaceOrder is refused
	RetryAfter time.Duration
	// Accepting, when set, is asked first by every Place (sync and queue); an
	// error refuses the order as ErrUnavailable (queue mode on a Redis that
	// lost its AOF).
	Accepting func() error
}

// Service places and reads orders.
type Service struct {
	store Store
	now   func() time.Time
	cfg   Config
}

// NewService returns a Service over store; now is the clock the sale window
// is judged by.
func NewService(store Store, now func() time.Time, cfg Config) *Service {
	if cfg.Mode == "" {
		cfg.Mode = ModeDirect
	}
	return &Service{store: store, now: now, cfg: cfg}
}

// Place buys one unit of the product for the user in the product's sale that
// is open now. It returns product.ErrNotFound, ErrSaleNotActive, ErrSoldOut,
// ErrAlreadyOrdered, *BusyError or ErrUnavailable when the order is not taken.
// In queue mode the order comes back PENDING, else CONFIRMED.
func (s *Service) Place(ctx context.Context, userID, productID uuid.UUID) (Order, error) {
	if s.cfg.Mode != ModeDirect && s.cfg.Accepting != nil {
		if err := s.cfg.Accepting(); err != nil {
			return Order{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	now := s.now()
	sl, err := s.openSale(ctx, productID, now)
	if err != nil {
		return Order{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Order{}, fmt.Errorf("order id: %w", err)
	}
	// Milliseconds: what the queue's stream and the order id carry, so the
	// order shown to the caller is the order stored.
	o := Order{ID: id, SaleID: sl.ID, ProductID: productID, UserID: userID, Status: StatusConfirmed, CreatedAt: now.Truncate(time.Millisecond)}
	if s.cfg.Mode == ModeDirect {
		return s.store.OrderPlace(ctx, o)
	}
	if s.cfg.Status != nil && s.cfg.Status.SoldOut(ctx, sl.ID) {
		return Order{}, ErrSoldOut // every process learns it from the invalidation, no round trip
	}
	if err := s.admit(ctx, o, sl); err != nil {
		return Order{}, err
	}
	if s.cfg.Mode == ModeQueue {
		o.Status = StatusPending
		return o, nil
	}
	// The caller going away must not leave us unsure whether the order
	// committed, so the wait for the batch ignores cancellation.
	err = s.cfg.Batcher.Submit(context.WithoutCancel(ctx), o)
	switch {
	case err == nil:
		return o, nil
	case errors.Is(err, ErrAlreadyOrdered):
		// PostgreSQL already holds an order of this user (the gate lost
		// track, e.g. after a Redis flush): the unit goes back, the user stays.
		s.release(ctx, o, false)
		return Order{}, ErrAlreadyOrdered
	case errors.Is(err, ErrSoldOut):
		return Order{}, ErrSoldOut // PostgreSQL has no unit to give back
	default:
		s.release(ctx, o, true)
		return Order{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
}

// admit puts the order to the gate, loading the sale's state from
// PostgreSQL the first time the gate sees the sale.
func (s *Service) admit(ctx context.Context, o Order, sl sale.Sale) error {
	a := Admission{Order: o, Sale: sl, Queue: s.cfg.Mode == ModeQueue, MaxQueued: s.cfg.MaxQueued}
	d, err := s.cfg.Gate.Admit(ctx, a)
	if err == nil && d == DeniedNotLoaded {
		if err = s.LoadGate(ctx, sl); err == nil {
			d, err = s.cfg.Gate.Admit(ctx, a)
		}
	}
	if err != nil {
		return fmt.Errorf("%w: gate: %w", ErrUnavailable, err)
	}
	switch d {
	case Admitted:
		return nil
	case DeniedSoldOut:
		return ErrSoldOut
	case DeniedAlreadyAdmitted:
		return ErrAlreadyOrdered
	case DeniedNotOpen:
		return ErrSaleNotActive
	case DeniedBusy:
		return &BusyError{RetryAfter: s.cfg.RetryAfter}
	}
	return fmt.Errorf("%w: gate decision %d", ErrUnavailable, d)
}

func (s *Service) release(ctx context.Context, o Order, forget bool) {
	// A failed release leaves the unit held in Redis; the reconciler gives it back.
	_ = s.cfg.Gate.Release(context.WithoutCancel(ctx), o, forget)
}

// LoadGate gives the gate the sale's state from PostgreSQL unless it holds
// it already: when the sale is created, and on first use if Redis lost it.
// It does nothing in direct mode.
func (s *Service) LoadGate(ctx context.Context, sl sale.Sale) error {
	if s.cfg.Gate == nil {
		return nil
	}
	st, err := s.GateState(ctx, sl)
	if err != nil {
		return err
	}
	return s.cfg.Gate.Load(ctx, st)
}

// GateState computes a sale's admission state from PostgreSQL: the product's
// stock and the sale's buyers.
func (s *Service) GateState(ctx context.Context, sl sale.Sale) (GateState, error) {
	p, err := s.store.ProductGet(ctx, sl.ProductID)
	if err != nil {
		return GateState{}, err
	}
	st := GateState{Sale: sl, Remaining: p.Quantity, Buyers: map[uuid.UUID]uuid.UUID{}}
	f := ListFilter{SaleID: sl.ID, Limit: 1000}
	for {
		page, err := s.store.OrderList(ctx, f)
		if err != nil {
			return GateState{}, err
		}
		for _, o := range page {
			st.Buyers[o.UserID] = o.ID
		}
		if len(page) < f.Limit {
			return st, nil
		}
		f.After = page[len(page)-1].ID
	}
}

// Reconcile rebuilds a sale's gate state from PostgreSQL, the truth: the
// stock and the buyers in PostgreSQL, to which the gate adds, atomically, the
// orders still queued in Redis (queue mode). Losing Redis data therefore
// never oversells; at worst it briefly refuses. A sync-mode order admitted
// while this runs is caught by PostgreSQL's stock guard and unique
// constraint. It returns what the gate now holds, as computed from PostgreSQL.
func (s *Service) Reconcile(ctx context.Context, saleID uuid.UUID) (remaining, buyers int, err error) {
	if s.cfg.Gate == nil {
		return 0, 0, nil
	}
	sl, err := s.store.SaleGet(ctx, saleID)
	if err != nil {
		return 0, 0, err
	}
	st, err := s.GateState(ctx, sl)
	if err != nil {
		return 0, 0, err
	}
	if err := s.cfg.Gate.Reconcile(ctx, st); err != nil {
		return 0, 0, err
	}
	return int(st.Remaining), len(st.Buyers), nil
}

// ReconcileOpen reconciles every sale open now,
// for the start-up and periodic passes.
func (s *Service) ReconcileOpen(ctx context.Context, lister SaleLister) error {
	now := s.now()
	f := sale.ListFilter{Now: now, Active: true, Limit: 500}
	var errs []error
	for {
		page, err := lister.SaleList(ctx, f)
		if err != nil {
			return err
		}
		for _, sl := range page {
			if _, _, err := s.Reconcile(ctx, sl.ID); err != nil {
				errs = append(errs, fmt.Errorf("sale %s: %w", sl.ID, err))
			}
		}
		if len(page) < f.Limit {
			return errors.Join(errs...)
		}
		f.After = page[len(page)-1].ID
	}
}

// SaleLister lists sales (the store).
type SaleLister interface {
	SaleList(ctx context.Context, f sale.ListFilter) ([]sale.Sale, error)
}

// openSale is the product's sale open at now; ErrSaleNotActive when there is
// none, product.ErrNotFound when the product does not exist.
func (s *Service) openSale(ctx context.Context, productID uuid.UUID, now time.Time) (sale.Sale, error) {
	sl, err := s.store.SaleOpen(ctx, productID, now)
	if errors.Is(err, sale.ErrNotFound) {
		if _, err := s.store.ProductGet(ctx, productID); err != nil {
			return sale.Sale{}, err
		}
		return sale.Sale{}, ErrSaleNotActive
	}
	return sl, err
}

// Check finds the user's order in the product's current sale (open now, else
// the next, else the latest). It returns that sale and the order; the order is
// found when ok, and is CONFIRMED when in PostgreSQL, else PENDING or REJECTED
// from the queue. It returns product.ErrNotFound or sale.ErrNotFound when
// there is no such product or it never had a sale.
func (s *Service) Check(ctx context.Context, userID, productID uuid.UUID) (sl sale.Sale, o Order, ok bool, err error) {
	sales, err := s.store.SalesByProduct(ctx, productID)
	if err != nil {
		return sale.Sale{}, Order{}, false, err
	}
	sl, found := sale.Current(sales, s.now())
	if !found {
		if _, err := s.store.ProductGet(ctx, productID); err != nil {
			return sale.Sale{}, Order{}, false, err
		}
		return sale.Sale{}, Order{}, false, sale.ErrNotFound
	}
	o, err = s.store.OrderBySaleUser(ctx, sl.ID, userID)
	if err == nil {
		return sl, o, true, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return sale.Sale{}, Order{}, false, err
	}
	if s.cfg.Queue != nil {
		o, ok, err := s.cfg.Queue.Pending(ctx, sl.ID, userID)
		if err != nil {
			return sale.Sale{}, Order{}, false, err
		}
		return sl, o, ok, nil
	}
	return sl, Order{}, false, nil
}

// List returns a page of orders chosen by f.
func (s *Service) List(ctx context.Context, f ListFilter) ([]Order, error) {
	return s.store.OrderList(ctx, f)
}
