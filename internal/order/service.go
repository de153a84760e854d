package order

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"

	"github.com/flashsale/flashsale/internal/product"
	"github.com/flashsale/flashsale/internal/sale"
)

// Catalog is where the service reads products and sales and stores a new
// sale: the Store itself, or a cache in front of it (redis.Catalog, in the
// sync and queue modes), set as Config.Catalog.
type Catalog interface {
	ProductGet(ctx context.Context, id uuid.UUID) (product.Product, error)
	SaleCreate(ctx context.Context, s sale.Sale) (sale.Sale, error)
	SaleOpen(ctx context.Context, productID uuid.UUID, now time.Time) (sale.Sale, error)
	SaleGet(ctx context.Context, id uuid.UUID) (sale.Sale, error)
	SalesByProduct(ctx context.Context, productID uuid.UUID) ([]sale.Sale, error)
}

// Store is what the order service needs from the database: postgres.Store.
// Its Catalog methods serve only when Config.Catalog is not set.
type Store interface {
	Catalog
	OrderPlace(ctx context.Context, o Order) (Order, error)
	OrderBySaleUser(ctx context.Context, saleID, userID uuid.UUID) (Order, error)
	OrderList(ctx context.Context, f ListFilter) ([]Order, error)
	// ProductSnapshot reads the product's stock and the buyers of its sales
	// that end after endedAfter in one consistent view, and calls fn with it
	// while holding the lock on the product's stock row: no order of the
	// product can commit until fn returns.
	ProductSnapshot(ctx context.Context, productID uuid.UUID, endedAfter time.Time, fn func(ProductState) error) error
}

// Submitter writes an admitted order and waits for its commit (a Batcher).
type Submitter interface {
	Submit(ctx context.Context, o Order) error
	// Replay writes an order again to learn an earlier write's outcome.
	Replay(ctx context.Context, o Order) error
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

// ErrUnavailable: the order was not taken, and certainly not stored
// (PostgreSQL or Redis unreachable); its admission was released, so the
// caller may retry.
var ErrUnavailable = errors.New("orders are temporarily unavailable")

// ErrNotStored marks a batch error that certainly stored nothing (the
// database refused the statement, or was never reached), as opposed to one
// whose outcome is unknown (the connection broke while a commit was under
// way). The store wraps it; a batch error without it may have committed.
var ErrNotStored = errors.New("not stored")

// BusyError: queue mode's backlog is over its limit; retry after RetryAfter.
type BusyError struct{ RetryAfter time.Duration }

func (e *BusyError) Error() string { return "order queue is busy" }

// StatusCache is the gate's published status of a sale, read from process
// memory most of the time (a client-side cached key that Redis invalidates
// when it changes).
type StatusCache interface {
	// SaleStatus is the sale's state at now and its product's remaining
	// stock as the gate last published it; loaded is false when the gate
	// holds no state for the product.
	SaleStatus(ctx context.Context, sl sale.Sale, now time.Time) (state sale.State, remaining int32, loaded bool, err error)
	// SoldOut reports whether the gate published the sale's product as
	// sold out; false when it cannot tell.
	SoldOut(ctx context.Context, sl sale.Sale, now time.Time) bool
}

// Config picks the mode and its parts; direct mode needs none of them.
type Config struct {
	Mode    Mode
	Gate    Gate      // sync and queue
	Batcher Submitter // sync
	// Admissions, when set, answers CheckOrder for orders not (yet) in
	// PostgreSQL: PENDING or REJECTED (sync and queue).
	Admissions Admissions
	// Status, when set, answers "sold out?" from process memory before the
	// gate is asked, and SaleStatus while a sale is open (sync and queue).
	Status StatusCache
	// Catalog, when set, serves the service's product and sale reads and
	// stores new sales instead of the Store (a cache in front of it).
	Catalog    Catalog
	MaxQueued  int64 // queue: backlog above which PlaceOrder is refused
	RetryAfter time.Duration
	// OrphanAfter is how old a sync-mode order recorded in flight and not in
	// PostgreSQL must be for a reconcile to take it as abandoned (its writer
	// died); it must exceed the longest a write can take. Default 1 minute.
	OrphanAfter time.Duration
	// Accepting, when set, is asked first by every Place (sync and queue); an
	// error refuses the order as ErrUnavailable (queue mode on a Redis that
	// lost its AOF).
	Accepting func() error
	// Decisions, when set, learns the outcome of every Place on an open
	// sale (metrics per sale).
	Decisions DecisionRecorder
	// Log hears of what the service works around rather than returns (a
	// gate it could not read or load); nil means slog.Default().
	Log *slog.Logger
}

// DecisionRecorder learns what became of each order attempt on an open
// sale: the order placed, or the error that refused it.
type DecisionRecorder interface {
	Decided(sl sale.Sale, o Order, err error)
}

// Service places and reads orders.
type Service struct {
	store   Store
	catalog Catalog // cfg.Catalog, else store
	now     func() time.Time
	cfg     Config
	log     *slog.Logger
	loads   singleflight.Group // one gate load per product at a time
}

// NewService returns a Service over store; now is the clock the sale window
// is judged by.
func NewService(store Store, now func() time.Time, cfg Config) *Service {
	if cfg.Mode == "" {
		cfg.Mode = ModeDirect
	}
	if cfg.OrphanAfter <= 0 {
		cfg.OrphanAfter = time.Minute
	}
	s := &Service{store: store, catalog: store, now: now, cfg: cfg, log: cfg.Log}
	if cfg.Catalog != nil {
		s.catalog = cfg.Catalog
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s
}

// outcomeRetries bounds how often sync mode writes an order again after a
// batch failed without saying whether it committed; a replay of a stored
// order changes nothing, so the answer to a replay is the truth.
var outcomeRetries = []time.Duration{100 * time.Millisecond, 400 * time.Millisecond, time.Second}

// Place buys one unit of the product for the user in the product's sale that
// is open now. It returns product.ErrNotFound, ErrSaleNotActive, ErrSoldOut,
// *AlreadyOrderedError (errors.Is ErrAlreadyOrdered) with the order the user
// holds, *BusyError, ErrUnavailable (nothing stored), or an *OrderError with
// ErrInProgress, ErrOutcomeUnknown or ErrNotReplicated when the order is
// not taken now. In queue mode the order comes back PENDING, else CONFIRMED.
func (s *Service) Place(ctx context.Context, userID, productID uuid.UUID) (o Order, err error) {
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
	if s.cfg.Decisions != nil {
		defer func() { s.cfg.Decisions.Decided(sl, o, err) }()
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Order{}, fmt.Errorf("order id: %w", err)
	}
	// Milliseconds: what the queue's stream and the order id carry, so the
	// order shown to the caller is the order stored.
	o = Order{ID: id, SaleID: sl.ID, ProductID: productID, UserID: userID, Status: StatusConfirmed, CreatedAt: now.Truncate(time.Millisecond)}
	if s.cfg.Mode == ModeDirect {
		return s.placeDirect(ctx, o)
	}
	if s.cfg.Status != nil && s.cfg.Status.SoldOut(ctx, sl, now) {
		// Every process learns it from the invalidation; once sold out the
		// sale's buyers are final, so a winner's retry is answered from
		// memory too.
		held, inProgress, err := s.soldOut(ctx, sl, userID)
		if inProgress && s.cfg.Batcher != nil {
			return s.inProgress(ctx, sl, userID, held)
		}
		return Order{}, err
	}
	if err := s.admit(ctx, o, sl); err != nil {
		if ip, ok := errors.AsType[*OrderError](err); ok && ip.Err == ErrInProgress && s.cfg.Batcher != nil {
			return s.inProgress(ctx, sl, userID, ip.OrderID)
		}
		return Order{}, err
	}
	if s.cfg.Mode == ModeQueue {
		o.Status = StatusPending
		return o, nil
	}
	return s.write(ctx, o, false)
}

// placeDirect stores o in its own transaction; a second order of the user
// is answered with the order they hold.
func (s *Service) placeDirect(ctx context.Context, o Order) (Order, error) {
	stored, err := s.store.OrderPlace(ctx, o)
	if errors.Is(err, ErrAlreadyOrdered) {
		return Order{}, s.alreadyOrdered(ctx, o)
	}
	return stored, err
}

// alreadyOrdered is ErrAlreadyOrdered with the order the user holds in o's
// sale, looked up in PostgreSQL; the bare sentinel when the lookup fails.
func (s *Service) alreadyOrdered(ctx context.Context, o Order) error {
	held, err := s.store.OrderBySaleUser(ctx, o.SaleID, o.UserID)
	if err != nil {
		return ErrAlreadyOrdered
	}
	return &AlreadyOrderedError{OrderID: held.ID}
}

// soldOut answers an attempt on a sold-out sale: the user's order if they
// hold one, else ErrSoldOut. inProgress reports an order of theirs still
// being written (sync mode). When the gate cannot say (its Redis master
// just died, say) the answer is ErrUnavailable: the caller may be a winner,
// who must never be told SOLD_OUT.
func (s *Service) soldOut(ctx context.Context, sl sale.Sale, userID uuid.UUID) (held uuid.UUID, inProgress bool, err error) {
	held, inProgress, found, err := s.cfg.Gate.Holder(ctx, sl, userID)
	switch {
	case err != nil:
		return uuid.Nil, false, fmt.Errorf("%w: gate: %w", ErrUnavailable, err)
	case !found:
		return uuid.Nil, false, ErrSoldOut
	case inProgress:
		return held, true, &OrderError{Err: ErrInProgress, OrderID: held}
	}
	return held, false, &AlreadyOrderedError{OrderID: held}
}

// write hands an admitted order to the batcher (sync mode) and waits for the
// truth about it; the batcher settles the order in the gate. replay is for
// an order written before whose outcome is not known yet.
func (s *Service) write(ctx context.Context, o Order, replay bool) (Order, error) {
	// The caller going away must not leave us unsure whether the order
	// committed, so the wait for the batch ignores cancellation.
	ctx = context.WithoutCancel(ctx)
	var err error
	if replay {
		err = s.cfg.Batcher.Replay(ctx, o)
	} else {
		err = s.cfg.Batcher.Submit(ctx, o)
	}
	// A batch failure leaves the outcome unknown when the batch may have
	// committed, and always for a replay (its failure says nothing of the
	// write before it).
	unknown := isBatchError(err) && (replay || !errors.Is(err, ErrNotStored))
	for _, wait := range outcomeRetries {
		if !unknown {
			break
		}
		// Write the order again: a replay of a stored order finds it and
		// changes nothing, and one racing the lost commit waits for it on
		// the order's key, so its answer is the truth.
		time.Sleep(wait)
		err = s.cfg.Batcher.Replay(ctx, o)
		unknown = isBatchError(err)
	}
	switch {
	case unknown:
		// The order stays admitted and in flight: the user's retry writes it
		// again (see inProgress), and a reconcile drops it if it was never
		// stored and nobody asks.
		return Order{}, &OrderError{Err: ErrOutcomeUnknown, OrderID: o.ID}
	case err == nil:
		return o, nil
	case errors.Is(err, ErrAlreadyOrdered):
		// PostgreSQL already holds an order of this user (the gate lost
		// track, e.g. after a Redis flush); the batcher gave the unit back.
		return Order{}, s.alreadyOrdered(ctx, o)
	case errors.Is(err, ErrSoldOut):
		return Order{}, ErrSoldOut
	}
	// Nothing stored (the batch failed before it could commit), or an error
	// of this order alone (no such sale or user): the batcher dropped its
	// admission.
	return Order{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// inProgress answers a user whose admitted order is still in flight in sync
// mode: it is being written now, or its write's outcome was lost (unknown
// outcome, or its process died). Writing it again is safe and tells which:
// the answer is that order's, committed now if it was not yet.
func (s *Service) inProgress(ctx context.Context, sl sale.Sale, userID, held uuid.UUID) (Order, error) {
	o := Order{ID: held, SaleID: sl.ID, ProductID: sl.ProductID, UserID: userID, Status: StatusConfirmed}
	if held.Version() == 7 {
		sec, nsec := held.Time().UnixTime()
		o.CreatedAt = time.Unix(sec, nsec).UTC()
	} else {
		o.CreatedAt = s.now().Truncate(time.Millisecond)
	}
	return s.write(ctx, o, true)
}

func isBatchError(err error) bool {
	var batch *BatchError
	return errors.As(err, &batch)
}

// admit puts the order to the gate, loading the product's state from
// PostgreSQL the first time the gate sees the sale.
func (s *Service) admit(ctx context.Context, o Order, sl sale.Sale) error {
	a := Admission{Order: o, Sale: sl, Queue: s.cfg.Mode == ModeQueue, MaxQueued: s.cfg.MaxQueued}
	d, held, err := s.cfg.Gate.Admit(ctx, a)
	if err == nil && d == DeniedNotLoaded {
		if err = s.LoadGate(ctx, sl); err == nil {
			d, held, err = s.cfg.Gate.Admit(ctx, a)
		}
	}
	if errors.Is(err, ErrNotReplicated) {
		// Not acknowledged, but not undone either: the order may yet be
		// written, so the caller learns its id and retries for the outcome.
		id := o.ID
		if d == DeniedAlreadyAdmitted {
			id = held
		}
		return &OrderError{Err: ErrNotReplicated, OrderID: id}
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
		return &AlreadyOrderedError{OrderID: held}
	case DeniedInProgress:
		return &OrderError{Err: ErrInProgress, OrderID: held}
	case DeniedNotOpen:
		return ErrSaleNotActive
	case DeniedBusy:
		return &BusyError{RetryAfter: s.cfg.RetryAfter}
	}
	return fmt.Errorf("%w: gate decision %d", ErrUnavailable, d)
}

// LoadGate gives the gate the state of the sale's product from PostgreSQL
// unless it holds it already: when a sale is created, and on first use if
// Redis lost it. Concurrent loads of one product in this process share one,
// which runs on a context none of its callers can cancel, bounded by
// gateLoadTimeout. It does nothing in direct mode.
func (s *Service) LoadGate(ctx context.Context, sl sale.Sale) error {
	if s.cfg.Gate == nil {
		return nil
	}
	_, err, _ := s.loads.Do(sl.ProductID.String(), func() (any, error) {
		// Shared by every caller loading the product: one of them going
		// away must not fail the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), gateLoadTimeout)
		defer cancel()
		return nil, s.snapshot(ctx, sl.ProductID, func(st ProductState) error {
			return s.cfg.Gate.Load(ctx, st)
		})
	})
	return err
}

// gateLoadTimeout bounds one shared gate load: the snapshot under the
// product row's lock (which waits for a batch committing on that row) and
// the gate's script.
const gateLoadTimeout = 10 * time.Second

// snapshot reads the product's state under its stock row's lock and calls
// fn with it while the lock is held.
func (s *Service) snapshot(ctx context.Context, productID uuid.UUID, fn func(ProductState) error) error {
	now := s.now()
	// Sales that ended long ago keep no keys in the gate (they expire a day
	// after the sale); their queued orders still count, as in-flight orders.
	return s.store.ProductSnapshot(ctx, productID, now.Add(-keepSalesFor), func(st ProductState) error {
		st.OrphanedBefore = now.Add(-s.cfg.OrphanAfter)
		return fn(st)
	})
}

// keepSalesFor is how long after its end a sale's state is still loaded.
const keepSalesFor = 24 * time.Hour

// Reconcile rebuilds the gate state of the sale's product from PostgreSQL,
// the truth, read in one snapshot under the product's stock row lock, plus
// the orders still in flight. It returns the units the gate may now admit
// and the sale's buyers in PostgreSQL.
//
// Why it is exact: while the lock is held no order of the product commits,
// so every order is either in the snapshot (committed) or still recorded in
// flight in Redis (queued, or being written in sync mode), and the gate
// script, atomic in Redis, counts each in-flight order not in the snapshot
// once. See the README, "Why an acknowledgment is kept".
func (s *Service) Reconcile(ctx context.Context, saleID uuid.UUID) (remaining, buyers int, err error) {
	if s.cfg.Gate == nil {
		return 0, 0, nil
	}
	sl, err := s.catalog.SaleGet(ctx, saleID)
	if err != nil {
		return 0, 0, err
	}
	err = s.snapshot(ctx, sl.ProductID, func(st ProductState) error {
		for _, sb := range st.Sales {
			if sb.Sale.ID == saleID {
				buyers = len(sb.Buyers)
			}
		}
		r, err := s.cfg.Gate.Reconcile(ctx, st)
		remaining = int(r)
		return err
	})
	return remaining, buyers, err
}

// ReconcileOpen reconciles the product of every sale open now, for the
// start-up and periodic passes.
func (s *Service) ReconcileOpen(ctx context.Context, lister SaleLister) error {
	return s.ReconcileOpenWhere(ctx, lister, nil)
}

// ReconcileOpenWhere is ReconcileOpen for the products keep accepts (all
// when keep is nil): after a Redis failover, those whose keys moved.
func (s *Service) ReconcileOpenWhere(ctx context.Context, lister SaleLister, keep func(productID uuid.UUID) bool) error {
	now := s.now()
	f := sale.ListFilter{Now: now, Active: true, Limit: 500}
	var errs []error
	done := map[uuid.UUID]bool{}
	for {
		page, err := lister.SaleList(ctx, f)
		if err != nil {
			return err
		}
		for _, sl := range page {
			if done[sl.ProductID] || (keep != nil && !keep(sl.ProductID)) {
				continue
			}
			done[sl.ProductID] = true
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
	sl, err := s.catalog.SaleOpen(ctx, productID, now)
	if errors.Is(err, sale.ErrNotFound) {
		if _, err := s.catalog.ProductGet(ctx, productID); err != nil {
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
	sales, err := s.catalog.SalesByProduct(ctx, productID)
	if err != nil {
		return sale.Sale{}, Order{}, false, err
	}
	sl, found := sale.Current(sales, s.now())
	if !found {
		if _, err := s.catalog.ProductGet(ctx, productID); err != nil {
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
	if s.cfg.Admissions != nil {
		o, ok, err := s.cfg.Admissions.Pending(ctx, sl, userID)
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

// CreateSale stores a new sale and, when the gate is used, loads a sale that
// is open already into it, so its first buyers and status readers find it
// there. An upcoming sale is loaded on first use instead: the product's
// stock may still change (another sale of it) before it opens. A failed
// load is logged, not returned: the sale is stored, and its first use loads
// it again. It returns the catalog's errors (sale.ErrOverlap,
// sale.ErrInvalidWindow, product.ErrNotFound).
func (s *Service) CreateSale(ctx context.Context, sl sale.Sale) (sale.Sale, error) {
	sl, err := s.catalog.SaleCreate(ctx, sl)
	if err != nil || s.cfg.Gate == nil || !sl.OpenAt(s.now()) {
		return sl, err
	}
	if err := s.LoadGate(ctx, sl); err != nil {
		s.log.WarnContext(ctx, "new sale not loaded into the gate; its first use loads it", "sale", sl.ID, "err", err)
	}
	return sl, nil
}

// SaleStatus is a product's current sale and its state.
type SaleStatus struct {
	Sale  sale.Sale
	State sale.State
	// Remaining is the product's stock: as the gate published it while the
	// sale is open in the sync and queue modes (rounded up to its publish
	// step, exact when sold out), else the store's.
	Remaining int32
	// At is when the state was judged, by the service's clock.
	At time.Time
}

// SaleStatus is the product's current sale (open now, else the next, else
// the latest) and its state now. While the sale is open and the gate
// publishes its status (sync and queue modes), the answer comes from there,
// mostly from process memory, after loading the gate if it holds nothing for
// the product; otherwise, and when the gate cannot answer (logged), from
// the product's stock. It returns product.ErrNotFound when there is no such
// product, sale.ErrNotFound when it never had a sale.
func (s *Service) SaleStatus(ctx context.Context, productID uuid.UUID) (SaleStatus, error) {
	sales, err := s.catalog.SalesByProduct(ctx, productID)
	if err != nil {
		return SaleStatus{}, err
	}
	now := s.now()
	sl, ok := sale.Current(sales, now)
	if !ok {
		if _, err := s.catalog.ProductGet(ctx, productID); err != nil {
			return SaleStatus{}, err
		}
		return SaleStatus{}, sale.ErrNotFound
	}
	if st, ok := s.publishedStatus(ctx, sl, now); ok {
		return st, nil
	}
	p, err := s.catalog.ProductGet(ctx, productID)
	if err != nil {
		return SaleStatus{}, err
	}
	return SaleStatus{Sale: sl, State: sl.StateAt(now, p.Quantity), Remaining: p.Quantity, At: now}, nil
}

// publishedStatus is the gate's status of the sale, open at now; ok is false
// when there is none to use: no gate, a sale not open, or a gate that could
// not answer (logged).
func (s *Service) publishedStatus(ctx context.Context, sl sale.Sale, now time.Time) (st SaleStatus, ok bool) {
	if s.cfg.Status == nil || !sl.OpenAt(now) {
		return SaleStatus{}, false
	}
	state, remaining, loaded, err := s.cfg.Status.SaleStatus(ctx, sl, now)
	if err == nil && !loaded {
		// The gate does not hold the product (Redis lost it): load it, so
		// the next reads come from the cache again instead of the store.
		if err = s.LoadGate(ctx, sl); err == nil {
			state, remaining, loaded, err = s.cfg.Status.SaleStatus(ctx, sl, now)
		}
	}
	if err != nil {
		s.log.WarnContext(ctx, "cached sale status unavailable", "err", err)
		return SaleStatus{}, false
	}
	if !loaded {
		return SaleStatus{}, false
	}
	return SaleStatus{Sale: sl, State: state, Remaining: remaining, At: now}, true
}
