package postgres_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/product"
)

func TestProductCreateGet(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	in := product.Product{
		ID:          newID(),
		Name:        "Phone",
		Description: "A phone.",
		PriceMinor:  49900,
		Currency:    "USD",
		Quantity:    7,
	}

	created, err := s.ProductCreate(ctx, in)
	if err != nil {
		t.Fatalf("ProductCreate: %v", err)
	}
	if created.CreatedAt.IsZero() {
		t.Errorf("ProductCreate CreatedAt is zero")
	}
	in.CreatedAt = created.CreatedAt
	if created != in {
		t.Errorf("ProductCreate = %+v, want %+v", created, in)
	}

	got, err := s.ProductGet(ctx, in.ID)
	if err != nil {
		t.Fatalf("ProductGet: %v", err)
	}
	if got != created {
		t.Errorf("ProductGet = %+v, want %+v", got, created)
	}
}

func TestProductGetNotFound(t *testing.T) {
	s := newStore(t)
	if _, err := s.ProductGet(t.Context(), newID()); !errors.Is(err, product.ErrNotFound) {
		t.Errorf("ProductGet = %v, want %v", err, product.ErrNotFound)
	}
}

func TestProductList(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	var want []uuid.UUID
	for range 5 {
		want = append(want, mustProduct(t, s, 1).ID)
	}

	all, err := s.ProductList(ctx, uuid.Nil, 0)
	if err != nil {
		t.Fatalf("ProductList: %v", err)
	}
	if got := productIDs(all); !slices.Equal(got, want) {
		t.Errorf("ProductList(Nil, 0) = %v, want %v", got, want)
	}

	for limit := 1; limit <= 3; limit++ {
		var got []uuid.UUID
		after := uuid.Nil
		for page := 0; ; page++ {
			ps, err := s.ProductList(ctx, after, limit)
			if err != nil {
				t.Fatalf("ProductList: %v", err)
			}
			if len(ps) > limit {
				t.Fatalf("ProductList(limit %d) returned %d", limit, len(ps))
			}
			if len(ps) == 0 || page > len(want) {
				break
			}
			got = append(got, productIDs(ps)...)
			after = ps[len(ps)-1].ID
		}
		if !slices.Equal(got, want) {
			t.Errorf("ProductList pages of %d = %v, want %v", limit, got, want)
		}
	}
}

func productIDs(ps []product.Product) []uuid.UUID {
	ids := make([]uuid.UUID, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	return ids
}
