package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/postgres"
	"github.com/flashsale/flashsale/internal/postgres/pgtest"
	"github.com/flashsale/flashsale/internal/product"
	"github.com/flashsale/flashsale/internal/sale"
)

// t0 is the "now" of the tests; the store never reads the clock itself.
var t0 = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

// newStore returns a store on a fresh, migrated database of its own.
func newStore(t testing.TB) *postgres.Store {
	t.Helper()
	return newStoreURL(t, pgtest.NewDatabase(t))
}

func newStoreURL(t testing.TB, databaseURL string) *postgres.Store {
	t.Helper()
	s, err := postgres.New(t.Context(), databaseURL)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func newID() uuid.UUID {
	return uuid.Must(uuid.NewV7())
}

func mustUser(t testing.TB, s *postgres.Store) auth.User {
	t.Helper()
	id := newID()
	u, err := s.UserCreate(t.Context(), auth.User{ID: id, Email: id.String() + "@example.com"}, "hash")
	if err != nil {
		t.Fatalf("UserCreate: %v", err)
	}
	return u
}

func mustProduct(t testing.TB, s *postgres.Store, quantity int32) product.Product {
	t.Helper()
	p, err := s.ProductCreate(t.Context(), product.Product{
		ID:         newID(),
		Name:       "Widget",
		PriceMinor: 1999,
		Currency:   "EUR",
		Quantity:   quantity,
	})
	if err != nil {
		t.Fatalf("ProductCreate: %v", err)
	}
	return p
}

func mustSale(t testing.TB, s *postgres.Store, productID uuid.UUID, startsAt, endsAt time.Time) sale.Sale {
	t.Helper()
	sl, err := s.SaleCreate(t.Context(), sale.Sale{ID: newID(), ProductID: productID, StartsAt: startsAt, EndsAt: endsAt})
	if err != nil {
		t.Fatalf("SaleCreate: %v", err)
	}
	return sl
}

func TestPing(t *testing.T) {
	s := newStore(t)
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping = %v, want nil", err)
	}
}

func TestNewUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := postgres.New(ctx, "postgres://postgres@127.0.0.1:1/nothing?sslmode=disable&connect_timeout=2")
	if err == nil {
		s.Close()
		t.Fatal("New on a closed port = nil error, want one")
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	url := pgtest.NewDatabase(t) // migrated once already
	if err := postgres.Migrate(t.Context(), url); err != nil {
		t.Errorf("second Migrate = %v, want nil", err)
	}
}

// TestConstraintNames guards the mapping of constraint violations to domain
// errors against a constraint renamed in the migrations.
func TestConstraintNames(t *testing.T) {
	url := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	for _, name := range postgres.ConstraintNames() {
		var n int
		if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_constraint WHERE conname = $1", name).Scan(&n); err != nil {
			t.Fatalf("query pg_constraint: %v", err)
		}
		if n != 1 {
			t.Errorf("constraints named %q = %d, want 1", name, n)
		}
	}
}
