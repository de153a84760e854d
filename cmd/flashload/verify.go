package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// baseline is the set of the sale's order ids before the run, so a reused
// product's earlier orders are not counted as this run's.
func baseline(ctx context.Context, db *pgxpool.Pool, saleID string) (map[string]bool, error) {
	rows, err := db.Query(ctx, `SELECT id::text FROM orders WHERE flash_sale_id = $1`, saleID)
	if err != nil {
		return nil, fmt.Errorf("read orders before the run: %w", err)
	}
	defer rows.Close()
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids[id] = true
	}
	return ids, rows.Err()
}

// readState reads the product's stock and the sale's orders placed during
// the run (those not in before).
func readState(ctx context.Context, db *pgxpool.Pool, t target, before map[string]bool) (DBState, error) {
	var d DBState
	if err := db.QueryRow(ctx, `SELECT quantity FROM products WHERE id = $1`, t.ProductID).Scan(&d.Remaining); err != nil {
		return d, fmt.Errorf("read stock: %w", err)
	}
	rows, err := db.Query(ctx, `SELECT id::text, flash_sale_id::text, user_id::text FROM orders WHERE flash_sale_id = $1`, t.SaleID)
	if err != nil {
		return d, fmt.Errorf("read orders: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var o DBOrder
		if err := rows.Scan(&o.ID, &o.SaleID, &o.UserID); err != nil {
			return d, err
		}
		if !before[o.ID] {
			d.Orders = append(d.Orders, o)
		}
	}
	return d, rows.Err()
}

// drain waits until every acknowledged order id is in the database (queue
// mode acknowledges before the write), or timeout passes; then it reads the
// final state. Stock is read after the orders have landed.
func drain(ctx context.Context, db *pgxpool.Pool, t target, before map[string]bool, acked map[string]string, timeout time.Duration) (DBState, time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		d, err := readState(ctx, db, t, before)
		if err != nil {
			return d, time.Since(start), err
		}
		in := make(map[string]bool, len(d.Orders))
		for _, o := range d.Orders {
			in[o.ID] = true
		}
		missing := 0
		for id := range acked {
			if !in[id] {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			// Settle: a queue worker may still be writing the last batch's
			// stock; one more read after a short pause sees it.
			if missing == 0 && len(d.Orders)+d.Remaining != t.Stock && time.Now().Before(deadline) {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			return d, time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return d, time.Since(start), ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
