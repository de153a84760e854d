package postgres_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/product"
	"github.com/flashsale/flashsale/internal/sale"
)

func TestSaleCreateGet(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	p := mustProduct(t, s, 1)
	in := sale.Sale{ID: newID(), ProductID: p.ID, StartsAt: t0, EndsAt: t0.Add(time.Hour)}

	created, err := s.SaleCreate(ctx, in)
	if err != nil {
		t.Fatalf("SaleCreate: %v", err)
	}
	if created.CreatedAt.IsZero() {
		t.Errorf("SaleCreate CreatedAt is zero")
	}
	in.CreatedAt = created.CreatedAt
	if created != in {
		t.Errorf("SaleCreate = %+v, want %+v", created, in)
	}

	got, err := s.SaleGet(ctx, in.ID)
	if err != nil {
		t.Fatalf("SaleGet: %v", err)
	}
	if got != created {
		t.Errorf("SaleGet = %+v, want %+v", got, created)
	}
}

func TestSaleCreateErrors(t *testing.T) {
	s := newStore(t)
	p := mustProduct(t, s, 1)
	other := mustProduct(t, s, 1)
	mustSale(t, s, p.ID, t0, t0.Add(time.Hour))

	tests := []struct {
		name             string
		productID        uuid.UUID
		startsAt, endsAt time.Time
		want             error
	}{
		{"unknown product", newID(), t0.Add(5 * time.Hour), t0.Add(6 * time.Hour), product.ErrNotFound},
		{"empty window", p.ID, t0.Add(5 * time.Hour), t0.Add(5 * time.Hour), sale.ErrInvalidWindow},
		{"ends before start", p.ID, t0.Add(6 * time.Hour), t0.Add(5 * time.Hour), sale.ErrInvalidWindow},
		{"same window", p.ID, t0, t0.Add(time.Hour), sale.ErrOverlap},
		{"overlaps start", p.ID, t0.Add(-time.Hour), t0.Add(time.Microsecond), sale.ErrOverlap},
		{"overlaps end", p.ID, t0.Add(time.Hour - time.Microsecond), t0.Add(2 * time.Hour), sale.ErrOverlap},
		{"inside", p.ID, t0.Add(time.Minute), t0.Add(2 * time.Minute), sale.ErrOverlap},
		{"ends at its start", p.ID, t0.Add(-time.Hour), t0, nil},
		{"starts at its end", p.ID, t0.Add(time.Hour), t0.Add(2 * time.Hour), nil},
		{"same window, other product", other.ID, t0, t0.Add(time.Hour), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.SaleCreate(t.Context(), sale.Sale{ID: newID(), ProductID: tt.productID, StartsAt: tt.startsAt, EndsAt: tt.endsAt})
			if !errors.Is(err, tt.want) {
				t.Errorf("SaleCreate = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSaleGetNotFound(t *testing.T) {
	s := newStore(t)
	if _, err := s.SaleGet(t.Context(), newID()); !errors.Is(err, sale.ErrNotFound) {
		t.Errorf("SaleGet = %v, want %v", err, sale.ErrNotFound)
	}
}

func TestSalesByProduct(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	p := mustProduct(t, s, 1)
	mustSale(t, s, mustProduct(t, s, 1).ID, t0, t0.Add(time.Hour)) // another product's
	later := mustSale(t, s, p.ID, t0.Add(2*time.Hour), t0.Add(3*time.Hour))
	earlier := mustSale(t, s, p.ID, t0, t0.Add(time.Hour))

	got, err := s.SalesByProduct(ctx, p.ID)
	if err != nil {
		t.Fatalf("SalesByProduct: %v", err)
	}
	if want := []sale.Sale{earlier, later}; !slices.Equal(got, want) {
		t.Errorf("SalesByProduct = %+v, want %+v", got, want)
	}

	got, err = s.SalesByProduct(ctx, newID())
	if err != nil || len(got) != 0 {
		t.Errorf("SalesByProduct(unknown) = %v, %v, want none, nil", got, err)
	}
}

func TestSaleOpen(t *testing.T) {
	s := newStore(t)
	p := mustProduct(t, s, 1)
	start, end := t0, t0.Add(time.Hour)
	open := mustSale(t, s, p.ID, start, end)
	mustSale(t, s, p.ID, end.Add(time.Hour), end.Add(2*time.Hour)) // a later one

	tests := []struct {
		name string
		now  time.Time
		want error
	}{
		{"before start", start.Add(-time.Microsecond), sale.ErrNotFound},
		{"at start", start, nil},
		{"just before end", end.Add(-time.Microsecond), nil},
		{"at end", end, sale.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.SaleOpen(t.Context(), p.ID, tt.now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("SaleOpen = %v, want %v", err, tt.want)
			}
			if err == nil && got != open {
				t.Errorf("SaleOpen = %+v, want %+v", got, open)
			}
		})
	}
}

func TestSaleList(t *testing.T) {
	s := newStore(t)
	a := mustProduct(t, s, 1).ID
	b := mustProduct(t, s, 1).ID
	c := mustProduct(t, s, 1).ID
	now := t0
	ended := mustSale(t, s, a, now.Add(-3*time.Hour), now.Add(-2*time.Hour))
	endedNow := mustSale(t, s, a, now.Add(-time.Hour), now) // ends at now: ended
	activeB := mustSale(t, s, b, now, now.Add(time.Hour))   // starts at now: active
	activeC := mustSale(t, s, c, now, now.Add(30*time.Minute))
	soon := mustSale(t, s, a, now.Add(time.Hour), now.Add(2*time.Hour))
	later := mustSale(t, s, b, now.Add(2*time.Hour), now.Add(3*time.Hour))

	tests := []struct {
		name                    string
		upcoming, active, ended bool
		want                    []sale.Sale
	}{
		{"all", false, false, false, []sale.Sale{ended, endedNow, activeB, activeC, soon, later}},
		{"upcoming", true, false, false, []sale.Sale{soon, later}},
		{"active", false, true, false, []sale.Sale{activeB, activeC}},
		{"ended", false, false, true, []sale.Sale{ended, endedNow}},
		{"active or upcoming", true, true, false, []sale.Sale{activeB, activeC, soon, later}},
		{"every phase", true, true, true, []sale.Sale{ended, endedNow, activeB, activeC, soon, later}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.SaleList(t.Context(), sale.ListFilter{Now: now, Upcoming: tt.upcoming, Active: tt.active, Ended: tt.ended})
			if err != nil {
				t.Fatalf("SaleList: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("SaleList = %v, want %v", saleIDs(got), saleIDs(tt.want))
			}
		})
	}
}

func TestSaleListPages(t *testing.T) {
	s := newStore(t)
	var want []uuid.UUID
	// Pairs with the same start, so pages break inside a tie on starts_at.
	for i := range 3 {
		startsAt := t0.Add(time.Duration(i) * time.Hour)
		for range 2 {
			want = append(want, mustSale(t, s, mustProduct(t, s, 1).ID, startsAt, startsAt.Add(time.Hour)).ID)
		}
	}

	for limit := 1; limit <= 4; limit++ {
		var got []uuid.UUID
		f := sale.ListFilter{Now: t0, Limit: limit}
		for page := 0; ; page++ {
			sales, err := s.SaleList(t.Context(), f)
			if err != nil {
				t.Fatalf("SaleList: %v", err)
			}
			if len(sales) > limit {
				t.Fatalf("SaleList(limit %d) returned %d", limit, len(sales))
			}
			if len(sales) == 0 || page > len(want) {
				break
			}
			got = append(got, saleIDs(sales)...)
			f.After = sales[len(sales)-1].ID
		}
		if !slices.Equal(got, want) {
			t.Errorf("SaleList pages of %d = %v, want %v", limit, got, want)
		}
	}
}

func saleIDs(sales []sale.Sale) []uuid.UUID {
	ids := make([]uuid.UUID, len(sales))
	for i, s := range sales {
		ids[i] = s.ID
	}
	return ids
}
