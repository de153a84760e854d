package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/postgres/dbsqlc"
)

// deadlockDetected is the SQLSTATE of a transaction PostgreSQL chose to abort
// to break a deadlock; running it again is safe.
const deadlockDetected = "40P01"

// batchAttempts bounds how often a batch is run again after a deadlock.
const batchAttempts = 3

// OrderInsertBatch stores a batch of confirmed orders and takes their units of
// stock in one transaction (group commit): one multi-row INSERT, then one
// guarded UPDATE per product. Like OrderPlace it does not check sale windows.
//
// The result for orders[i] is results[i]:
//   - nil: the order is in the database, inserted now or already there (a
//     replay of the same order id changes nothing, stock included);
//   - order.ErrAlreadyOrdered: the user has another order in the sale;
//   - order.ErrSoldOut: the product's stock ran out before this order; of the
//     orders for one product, those earlier in the batch win;
//   - sale.ErrNotFound or auth.ErrUserNotFound, as for OrderPlace.
//
// An error for the whole batch (the database unreachable, say) is returned as
// err, with results nil. It wraps order.ErrNotStored when nothing can have
// been stored: PostgreSQL answered with an error, or was never reached, or
// the transaction failed before its COMMIT was sent. Otherwise the batch may
// have committed (the connection broke during the one statement or the
// COMMIT): running it again is safe, as replays change nothing, and tells.
func (s *Store) OrderInsertBatch(ctx context.Context, orders []order.Order) (results []error, err error) {
	if len(orders) == 0 {
		return []error{}, nil
	}
	for attempt := 1; ; attempt++ {
		results, err = s.orderInsertBatch(ctx, orders)
		if attempt < batchAttempts && isDeadlock(err) {
			continue
		}
		break
	}
	if err != nil && !isDomainError(err) {
		return nil, classify(err)
	}
	if err == nil {
		return results, nil
	}
	if len(orders) == 1 {
		return []error{err}, nil
	}
	// A foreign key failed for some order (no such sale or user), failing the
	// multi-row INSERT as a whole. That is rare, so find which one the slow
	// way: one transaction per order.
	results = make([]error, len(orders))
	for i := range orders {
		r, err := s.OrderInsertBatch(ctx, orders[i:i+1])
		if err != nil {
			return nil, err
		}
		results[i] = r[0]
	}
	return results, nil
}

// orderInsertBatch runs OrderInsertBatch once: as one statement when every
// product has the units the batch needs (the usual case), otherwise as a
// transaction that takes what is left.
func (s *Store) orderInsertBatch(ctx context.Context, orders []order.Order) ([]error, error) {
	results, err := s.orderInsertBatchOneStatement(ctx, orders)
	if !isShortOfStock(err) {
		return results, err
	}
	return s.orderInsertBatchTx(ctx, orders)
}

// batchParams zips orders into the batch statements' arrays, in (sale,
// user, id) order, so that two batches waiting on each other's rows in the
// unique indexes take those locks in the same order and cannot deadlock.
func batchParams(orders []order.Order) dbsqlc.OrderInsertBatchParams {
	sorted := slices.Clone(orders)
	slices.SortFunc(sorted, func(a, b order.Order) int {
		if c := bytes.Compare(a.SaleID[:], b.SaleID[:]); c != 0 {
			return c
		}
		if c := bytes.Compare(a.UserID[:], b.UserID[:]); c != 0 {
			return c
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	p := dbsqlc.OrderInsertBatchParams{
		Ids:          make([]uuid.UUID, len(sorted)),
		FlashSaleIds: make([]uuid.UUID, len(sorted)),
		ProductIds:   make([]uuid.UUID, len(sorted)),
		UserIds:      make([]uuid.UUID, len(sorted)),
		CreatedAts:   make([]time.Time, len(sorted)),
	}
	for i, o := range sorted {
		p.Ids[i], p.FlashSaleIds[i], p.ProductIds[i], p.UserIds[i] = o.ID, o.SaleID, o.ProductID, o.UserID
		p.CreatedAts[i] = takenAt(o)
	}
	return p
}

// orderInsertBatchOneStatement stores the batch with
// OrderInsertBatchTakeStock: one round trip, and the product's row lock held
// only inside PostgreSQL. When a product has fewer units left than the
// batch inserted it fails, having written nothing, with an error
// isShortOfStock recognises.
func (s *Store) orderInsertBatchOneStatement(ctx context.Context, orders []order.Order) ([]error, error) {
	insertedIDs, err := s.q.OrderInsertBatchTakeStock(ctx, dbsqlc.OrderInsertBatchTakeStockParams(batchParams(orders)))
	if isShortOfStock(err) {
		return nil, err
	}
	if err != nil {
		return nil, interpretError("order insert batch", err)
	}
	inserted := idSet(insertedIDs)
	existing, err := existingOf(ctx, s.q, orders, inserted)
	if err != nil {
		return nil, err
	}
	return batchResults(orders, inserted, existing, nil), nil
}

// orderInsertBatchTx stores the batch in one transaction that inserts it,
// then takes each product's units; for a product short of them it keeps
// the orders the stock covers and deletes the rest (sold out).
func (s *Store) orderInsertBatchTx(ctx context.Context, orders []order.Order) ([]error, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, beforeCommit(interpretError("order insert batch: begin", err))
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit; otherwise the error is already being returned
	q := s.q.WithTx(tx)

	p := batchParams(orders)
	insertedIDs, err := q.OrderInsertBatch(ctx, p)
	if err != nil {
		return nil, beforeCommit(interpretError("order insert batch: insert", err))
	}
	inserted := idSet(insertedIDs)

	existing, err := existingOf(ctx, q, orders, inserted)
	if err != nil {
		return nil, beforeCommit(err)
	}

	// The orders inserted now, per product, in batch order (an id listed
	// twice in the batch was inserted, and takes stock, once).
	byProduct := map[uuid.UUID][]uuid.UUID{}
	counted := make(map[uuid.UUID]bool, len(insertedIDs))
	for _, o := range orders {
		if inserted[o.ID] && !counted[o.ID] {
			counted[o.ID] = true
			byProduct[o.ProductID] = append(byProduct[o.ProductID], o.ID)
		}
	}
	// Products in id order, so concurrent batches lock their rows in the
	// same order.
	products := make([]uuid.UUID, 0, len(byProduct))
	for id := range byProduct {
		products = append(products, id)
	}
	slices.SortFunc(products, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })

	soldOut := map[uuid.UUID]bool{}
	for _, productID := range products {
		ids := byProduct[productID]
		n, err := q.ProductTakeStockN(ctx, dbsqlc.ProductTakeStockNParams{ID: productID, N: int32(len(ids))})
		if err != nil {
			return nil, beforeCommit(interpretError("order insert batch: take stock", err))
		}
		if n == 1 {
			continue
		}
		// Fewer units left than this batch inserted: lock the row, keep the
		// orders the stock covers, delete the rest (they are sold out) and
		// take what is left. The guard holds again, as the row is locked.
		left, err := q.ProductQuantityLock(ctx, productID)
		if err != nil {
			return nil, beforeCommit(interpretError("order insert batch: lock stock", err))
		}
		take := min(int(left), len(ids))
		excess := ids[take:]
		if _, err := q.OrderDeleteByIDs(ctx, excess); err != nil {
			return nil, beforeCommit(interpretError("order insert batch: delete sold out", err))
		}
		for _, id := range excess {
			soldOut[id] = true
		}
		if take == 0 {
			continue
		}
		n, err = q.ProductTakeStockN(ctx, dbsqlc.ProductTakeStockNParams{ID: productID, N: int32(take)})
		if err != nil {
			return nil, beforeCommit(interpretError("order insert batch: take stock", err))
		}
		if n != 1 {
			return nil, beforeCommit(fmt.Errorf("order insert batch: take %d of %d units of product %s locked", take, left, productID))
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, &commitError{interpretError("order insert batch: commit", err)}
	}

	return batchResults(orders, inserted, existing, soldOut), nil
}

// commitError is a failed COMMIT: unless PostgreSQL answered it with an
// error, the transaction may have committed.
type commitError struct{ err error }

func (e *commitError) Error() string { return e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// classify marks a whole batch's error with order.ErrNotStored when it
// certainly stored nothing: PostgreSQL answered with an error (the
// statement or transaction was rolled back), the connection failed before
// anything was sent, or a transaction failed before its COMMIT. A broken
// connection during the batch statement (which commits on its own) or the
// COMMIT leaves the outcome unknown. (orderInsertBatchTx marks its failures
// before COMMIT itself, with beforeCommit.)
func classify(err error) error {
	_, pgErr := errors.AsType[*pgconn.PgError](err)
	_, connectErr := errors.AsType[*pgconn.ConnectError](err)
	if pgErr || connectErr || pgconn.SafeToRetry(err) {
		return fmt.Errorf("%w: %w", order.ErrNotStored, err)
	}
	return err
}

// beforeCommit marks an error of a transaction that has not sent its COMMIT
// as storing nothing, unless it is a domain error (which OrderInsertBatch
// compares by identity).
func beforeCommit(err error) error {
	if isDomainError(err) {
		return err
	}
	return fmt.Errorf("%w: %w", order.ErrNotStored, err)
}

func idSet(ids []uuid.UUID) map[uuid.UUID]bool {
	set := make(map[uuid.UUID]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	return set
}

// existingOf returns which of the orders not inserted now are in the
// database all the same: replays (their id is there), as opposed to a
// second order of the same user in the sale (another id is).
func existingOf(ctx context.Context, q *dbsqlc.Queries, orders []order.Order, inserted map[uuid.UUID]bool) (map[uuid.UUID]bool, error) {
	var skipped []uuid.UUID
	for _, o := range orders {
		if !inserted[o.ID] {
			skipped = append(skipped, o.ID)
		}
	}
	if len(skipped) == 0 {
		return nil, nil
	}
	ids, err := q.OrderIDsExisting(ctx, skipped)
	if err != nil {
		return nil, interpretError("order insert batch: existing", err)
	}
	return idSet(ids), nil
}

// batchResults is each order's outcome, in the batch's order.
func batchResults(orders []order.Order, inserted, existing, soldOut map[uuid.UUID]bool) []error {
	results := make([]error, len(orders))
	for i, o := range orders {
		switch {
		case soldOut[o.ID]:
			results[i] = order.ErrSoldOut
		case inserted[o.ID], existing[o.ID]:
			results[i] = nil
		default:
			results[i] = order.ErrAlreadyOrdered
		}
	}
	return results
}

// isShortOfStock reports whether err is a batch statement refused by the
// products_quantity_nonnegative CHECK: a product had fewer units left than
// the batch needed.
func isShortOfStock(err error) bool {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	return ok && pgErr.Code == checkViolation && pgErr.ConstraintName == "products_quantity_nonnegative"
}

// isDeadlock reports whether err aborted a transaction to break a deadlock.
func isDeadlock(err error) bool {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	return ok && pgErr.Code == deadlockDetected
}

// isDomainError reports whether err is one of the domain errors
// interpretError maps a constraint violation to.
func isDomainError(err error) bool {
	for _, domainErr := range constraintErrors {
		if err == domainErr {
			return true
		}
	}
	return false
}
