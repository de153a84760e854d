package postgres

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/postgres/dbsqlc"
	"github.com/flashsale/flashsale/internal/product"
)

// ProductCreate stores a new product with p's fields; CreatedAt is set by the
// database.
func (s *Store) ProductCreate(ctx context.Context, p product.Product) (product.Product, error) {
	row, err := s.q.ProductCreate(ctx, dbsqlc.ProductCreateParams{
		ID:          p.ID,
		Name:        p.Name,
		Description: p.Description,
		PriceMinor:  p.PriceMinor,
		Currency:    p.Currency,
		Quantity:    p.Quantity,
	})
	if err != nil {
		return product.Product{}, interpretError("product create", err)
	}
	return productFromRow(row), nil
}

// ProductGet returns the product with that id, or product.ErrNotFound.
func (s *Store) ProductGet(ctx context.Context, id uuid.UUID) (product.Product, error) {
	row, err := s.q.ProductGet(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return product.Product{}, product.ErrNotFound
	}
	if err != nil {
		return product.Product{}, interpretError("product get", err)
	}
	return productFromRow(row), nil
}

// ProductList returns up to limit products (see DefaultPageSize and
// MaxPageSize) in id order, that is creation order, starting after the product
// with id after; uuid.Nil starts from the first.
func (s *Store) ProductList(ctx context.Context, after uuid.UUID, limit int) ([]product.Product, error) {
	rows, err := s.q.ProductList(ctx, dbsqlc.ProductListParams{After: after, Max: pageSize(limit)})
	if err != nil {
		return nil, interpretError("product list", err)
	}
	products := make([]product.Product, len(rows))
	for i, r := range rows {
		products[i] = productFromRow(r)
	}
	return products, nil
}

func productFromRow(r dbsqlc.Product) product.Product {
	return product.Product{
		ID:          r.ID,
		Name:        r.Name,
		Description: r.Description,
		PriceMinor:  r.PriceMinor,
		Currency:    r.Currency,
		Quantity:    r.Quantity,
		CreatedAt:   r.CreatedAt.UTC(),
	}
}
