package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/postgres/dbsqlc"
)

// OrderPlace stores a confirmed order and takes one unit of the product's
// stock, both or neither. It does not check the sale's window; the caller has.
// It returns order.ErrAlreadyOrdered when the user has an order in the sale
// (even if the sale is sold out since), order.ErrSoldOut when no stock is
// left, sale.ErrNotFound when there is no such sale selling o.ProductID, and
// auth.ErrUserNotFound when there is no such user, and an *order.OrderError
// with order.ErrOutcomeUnknown when the connection broke during the COMMIT.
func (s *Store) OrderPlace(ctx context.Context, o order.Order) (order.Order, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return order.Order{}, interpretError("order place: begin", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit; otherwise the error is already being returned
	q := s.q.WithTx(tx)

	// Insert first: a repeat buyer is turned away by the unique constraint
	// without waiting on the product row, and the row lock the UPDATE takes
	// is held only for the UPDATE and the commit.
	row, err := q.OrderInsert(ctx, dbsqlc.OrderInsertParams{
		ID:          o.ID,
		FlashSaleID: o.SaleID,
		ProductID:   o.ProductID,
		UserID:      o.UserID,
		CreatedAt:   takenAt(o),
	})
	if err != nil {
		return order.Order{}, interpretError("order place: insert", err)
	}
	n, err := q.ProductTakeStock(ctx, o.ProductID)
	if err != nil {
		return order.Order{}, interpretError("order place: take stock", err)
	}
	if n == 0 {
		return order.Order{}, order.ErrSoldOut // the deferred rollback undoes the insert
	}
	if err := tx.Commit(ctx); err != nil {
		if _, answered := errors.AsType[*pgconn.PgError](err); answered {
			return order.Order{}, interpretError("order place: commit", err)
		}
		// The COMMIT was sent but its answer lost: the order may be stored.
		// A retry of the buyer finds it (ErrAlreadyOrdered) if it is.
		return order.Order{}, fmt.Errorf("%w: %w", &order.OrderError{Err: order.ErrOutcomeUnknown, OrderID: o.ID}, err)
	}
	return orderFromRow(row), nil
}

// OrderBySaleUser returns the user's order in the sale, or order.ErrNotFound.
func (s *Store) OrderBySaleUser(ctx context.Context, saleID, userID uuid.UUID) (order.Order, error) {
	row, err := s.q.OrderGetBySaleUser(ctx, dbsqlc.OrderGetBySaleUserParams{
		FlashSaleID: saleID,
		UserID:      userID,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return order.Order{}, order.ErrNotFound
	}
	if err != nil {
		return order.Order{}, interpretError("order by sale and user", err)
	}
	return orderFromRow(row), nil
}

// OrderList returns the orders f selects, newest first, up to f.Limit of them
// (see DefaultPageSize and MaxPageSize) after the order f.After.
func (s *Store) OrderList(ctx context.Context, f order.ListFilter) ([]order.Order, error) {
	rows, err := s.q.OrderList(ctx, dbsqlc.OrderListParams{
		UserID:      nilIfZero(f.UserID),
		FlashSaleID: nilIfZero(f.SaleID),
		After:       nilIfZero(f.After),
		Max:         pageSize(f.Limit),
	})
	if err != nil {
		return nil, interpretError("order list", err)
	}
	orders := make([]order.Order, len(rows))
	for i, r := range rows {
		orders[i] = orderFromRow(r)
	}
	return orders, nil
}

func orderFromRow(r dbsqlc.Order) order.Order {
	return order.Order{
		ID:        r.ID,
		SaleID:    r.FlashSaleID,
		ProductID: r.ProductID,
		UserID:    r.UserID,
		Status:    statusFromDB(r.Status),
		CreatedAt: r.CreatedAt.UTC(),
	}
}

// statusFromDB reads orders.status; its CHECK constraint allows only these.
func statusFromDB(s string) order.Status {
	switch s {
	case "pending":
		return order.StatusPending
	case "confirmed":
		return order.StatusConfirmed
	case "rejected":
		return order.StatusRejected
	}
	return 0
}

// takenAt is when the service took o, stored as the order's created_at; an
// order built without one is stamped now.
func takenAt(o order.Order) time.Time {
	if o.CreatedAt.IsZero() {
		return time.Now().UTC()
	}
	return o.CreatedAt
}
