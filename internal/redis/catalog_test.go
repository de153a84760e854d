package redis_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/product"
	"github.com/flashsale/flashsale/internal/redis"
	"github.com/flashsale/flashsale/internal/sale"
)

// fakeCatalog is an in-memory CatalogStore that counts its reads.
type fakeCatalog struct {
	mu       sync.Mutex
	products map[uuid.UUID]product.Product
	sales    []sale.Sale
	reads    int
}

func (f *fakeCatalog) read() { f.mu.Lock(); f.reads++; f.mu.Unlock() }

func (f *fakeCatalog) readCount() int { f.mu.Lock(); defer f.mu.Unlock(); return f.reads }

func (f *fakeCatalog) ProductCreate(_ context.Context, p product.Product) (product.Product, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.products[p.ID] = p
	return p, nil
}

func (f *fakeCatalog) ProductGet(_ context.Context, id uuid.UUID) (product.Product, error) {
	f.read()
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.products[id]
	if !ok {
		return product.Product{}, product.ErrNotFound
	}
	return p, nil
}

func (f *fakeCatalog) ProductList(context.Context, uuid.UUID, int) ([]product.Product, error) {
	f.read()
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]product.Product, 0, len(f.products))
	for _, p := range f.products {
		out = append(out, p)
	}
	return out, nil
}

func (f *fakeCatalog) SaleCreate(_ context.Context, s sale.Sale) (sale.Sale, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sales = append(f.sales, s)
	return s, nil
}

func (f *fakeCatalog) SaleGet(_ context.Context, id uuid.UUID) (sale.Sale, error) {
	f.read()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sales {
		if s.ID == id {
			return s, nil
		}
	}
	return sale.Sale{}, sale.ErrNotFound
}

func (f *fakeCatalog) SalesByProduct(_ context.Context, productID uuid.UUID) ([]sale.Sale, error) {
	f.read()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []sale.Sale
	for _, s := range f.sales {
		if s.ProductID == productID {
			out = append(out, s)
		}
	}
	return out, nil
}

func (f *fakeCatalog) SaleList(context.Context, sale.ListFilter) ([]sale.Sale, error) {
	f.read()
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sale.Sale(nil), f.sales...), nil
}

// TestCatalog: reads are served from the cache until an admin's create
// invalidates them, in this process and in another one.
func TestCatalog(t *testing.T) {
	t.Parallel()
	prefix := newPrefix()
	store := &fakeCatalog{products: map[uuid.UUID]product.Product{}}
	cat := redis.NewCatalog(store, redis.NewCache(newClientPrefix(t, prefix)))
	other := redis.NewCatalog(store, redis.NewCache(newClientPrefix(t, prefix))) // a second process
	ctx := t.Context()

	p, _ := cat.ProductCreate(ctx, product.Product{ID: newID(), Name: "p", Quantity: 5})
	if sales, err := cat.SalesByProduct(ctx, p.ID); err != nil || len(sales) != 0 {
		t.Fatalf("SalesByProduct = %v, %v; want none", sales, err)
	}
	reads := store.readCount()
	if _, err := cat.SalesByProduct(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if got := store.readCount(); got != reads {
		t.Errorf("second SalesByProduct read the store (%d reads, want %d)", got, reads)
	}
	if _, err := other.SalesByProduct(ctx, p.ID); err != nil { // warms the other process
		t.Fatal(err)
	}

	// A new sale is seen at once here, and by the other process once Redis
	// has pushed the invalidation.
	now := time.Now()
	sl, err := cat.SaleCreate(ctx, sale.Sale{ID: newID(), ProductID: p.ID, StartsAt: now, EndsAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := cat.SaleOpen(ctx, p.ID, now); err != nil || got.ID != sl.ID {
		t.Errorf("SaleOpen after create = %v, %v; want %s", got.ID, err, sl.ID)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		sales, err := other.SalesByProduct(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(sales) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the other process never saw the new sale")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := cat.SaleOpen(ctx, p.ID, now.Add(2*time.Hour)); !errors.Is(err, sale.ErrNotFound) {
		t.Errorf("SaleOpen after the window = %v, want sale.ErrNotFound", err)
	}

	// Unknown ids are remembered as unknown for a while.
	unknown := newID()
	for i := range 2 {
		before := store.readCount()
		if _, err := cat.ProductGet(ctx, unknown); !errors.Is(err, product.ErrNotFound) {
			t.Fatalf("ProductGet(unknown) = %v, want product.ErrNotFound", err)
		}
		if i == 1 && store.readCount() != before {
			t.Errorf("a second ProductGet of an unknown id read the store")
		}
	}

	// Lists: cached, then new after a create bumps the catalog version.
	list, err := cat.ProductList(ctx, uuid.Nil, 10)
	if err != nil || len(list) != 1 {
		t.Fatalf("ProductList = %v, %v", list, err)
	}
	if _, err := cat.ProductCreate(ctx, product.Product{ID: newID(), Name: "q"}); err != nil {
		t.Fatal(err)
	}
	if list, err := cat.ProductList(ctx, uuid.Nil, 10); err != nil || len(list) != 2 {
		t.Errorf("ProductList after a create = %d products, %v; want 2", len(list), err)
	}
	if hits, misses := cat.Stats(); hits == 0 || misses == 0 {
		t.Errorf("Stats = %d hits, %d misses; want some of each", hits, misses)
	}
}
