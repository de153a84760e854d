package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/postgres/dbsqlc"
	"github.com/flashsale/flashsale/internal/sale"
)

// SaleCreate stores a new sale with s's ID, ProductID and window; CreatedAt is
// set by the database. It returns product.ErrNotFound when the product does not
// exist, sale.ErrInvalidWindow when EndsAt is not after StartsAt, and
// sale.ErrOverlap when the window shares an instant with another sale of the
// product. Windows are half-open, so one sale may start when another ends.
func (s *Store) SaleCreate(ctx context.Context, sl sale.Sale) (sale.Sale, error) {
	row, err := s.q.SaleCreate(ctx, dbsqlc.SaleCreateParams{
		ID:        sl.ID,
		ProductID: sl.ProductID,
		StartsAt:  sl.StartsAt,
		EndsAt:    sl.EndsAt,
	})
	if err != nil {
		return sale.Sale{}, interpretError("sale create", err)
	}
	return saleFromRow(row), nil
}

// SaleGet returns the sale with that id, or sale.ErrNotFound.
func (s *Store) SaleGet(ctx context.Context, id uuid.UUID) (sale.Sale, error) {
	row, err := s.q.SaleGet(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return sale.Sale{}, sale.ErrNotFound
	}
	if err != nil {
		return sale.Sale{}, interpretError("sale get", err)
	}
	return saleFromRow(row), nil
}

// SalesByProduct returns all sales of the product, earliest start first; none
// (and no error) when it has no sales or does not exist.
func (s *Store) SalesByProduct(ctx context.Context, productID uuid.UUID) ([]sale.Sale, error) {
	rows, err := s.q.SaleListByProduct(ctx, productID)
	if err != nil {
		return nil, interpretError("sales by product", err)
	}
	return salesFromRows(rows), nil
}

// SaleOpen returns the product's sale that is open at now, StartsAt <= now <
// EndsAt, or sale.ErrNotFound.
func (s *Store) SaleOpen(ctx context.Context, productID uuid.UUID, now time.Time) (sale.Sale, error) {
	row, err := s.q.SaleOpen(ctx, dbsqlc.SaleOpenParams{ProductID: productID, Now: now})
	if errors.Is(err, pgx.ErrNoRows) {
		return sale.Sale{}, sale.ErrNotFound
	}
	if err != nil {
		return sale.Sale{}, interpretError("sale open", err)
	}
	return saleFromRow(row), nil
}

// SaleList returns the sales in any of the phases f selects at f.Now (all
// sales when it selects none), ordered by StartsAt then ID, up to f.Limit of
// them (see DefaultPageSize and MaxPageSize) after the sale f.After.
func (s *Store) SaleList(ctx context.Context, f sale.ListFilter) ([]sale.Sale, error) {
	if !f.Upcoming && !f.Active && !f.Ended {
		f.Upcoming, f.Active, f.Ended = true, true, true
	}
	rows, err := s.q.SaleList(ctx, dbsqlc.SaleListParams{
		Now:      f.Now,
		Upcoming: f.Upcoming,
		Active:   f.Active,
		Ended:    f.Ended,
		After:    nilIfZero(f.After),
		Max:      pageSize(f.Limit),
	})
	if err != nil {
		return nil, interpretError("sale list", err)
	}
	return salesFromRows(rows), nil
}

func saleFromRow(r dbsqlc.FlashSale) sale.Sale {
	return sale.Sale{
		ID:        r.ID,
		ProductID: r.ProductID,
		StartsAt:  r.StartsAt.UTC(),
		EndsAt:    r.EndsAt.UTC(),
		CreatedAt: r.CreatedAt.UTC(),
	}
}

func salesFromRows(rows []dbsqlc.FlashSale) []sale.Sale {
	sales := make([]sale.Sale, len(rows))
	for i, r := range rows {
		sales[i] = saleFromRow(r)
	}
	return sales
}

// nilIfZero turns uuid.Nil, which means "any" or "from the start" in filters,
// into the NULL the queries expect.
func nilIfZero(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}
