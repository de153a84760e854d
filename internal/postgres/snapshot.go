package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/postgres/dbsqlc"
	"github.com/flashsale/flashsale/internal/product"
)

// ProductSnapshot reads the product's stock and the buyers of its sales that
// end after endedAfter, and calls fn with them while the transaction still
// holds the lock on the product's row (SELECT ... FOR UPDATE).
//
// Why this is one consistent view: every order of the product commits in a
// transaction that also takes its unit with an UPDATE of that row (the
// batch statement, the batch transaction, OrderPlace). Once the lock is
// granted every such transaction that updated the row has ended, and none
// can update it, and so commit, until this one ends after fn. Read
// Committed statements after the lock therefore see every order the stock
// reflects and no other.
//
// It returns product.ErrNotFound for an unknown product, or fn's error.
func (s *Store) ProductSnapshot(ctx context.Context, productID uuid.UUID, endedAfter time.Time, fn func(order.ProductState) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return interpretError("product snapshot: begin", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only: rolling back is how it ends
	q := s.q.WithTx(tx)

	quantity, err := q.ProductQuantityLock(ctx, productID)
	if errors.Is(err, pgx.ErrNoRows) {
		return product.ErrNotFound
	}
	if err != nil {
		return interpretError("product snapshot: lock", err)
	}
	rows, err := q.SaleListEndingAfter(ctx, dbsqlc.SaleListEndingAfterParams{ProductID: productID, EndedAfter: endedAfter})
	if err != nil {
		return interpretError("product snapshot: sales", err)
	}
	st := order.ProductState{ProductID: productID, Quantity: quantity}
	ids := make([]uuid.UUID, len(rows))
	index := make(map[uuid.UUID]int, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
		index[r.ID] = i
		st.Sales = append(st.Sales, order.SaleBuyers{Sale: saleFromRow(r), Buyers: map[uuid.UUID]uuid.UUID{}})
	}
	if len(ids) > 0 {
		buyers, err := q.OrderBuyersBySales(ctx, ids)
		if err != nil {
			return interpretError("product snapshot: buyers", err)
		}
		for _, b := range buyers {
			st.Sales[index[b.FlashSaleID]].Buyers[b.UserID] = b.ID
		}
	}
	if err := fn(st); err != nil {
		return fmt.Errorf("product snapshot: %w", err)
	}
	return nil
}
