package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/flashsale/flashsale/internal/product"
	"github.com/flashsale/flashsale/internal/sale"
)

// CatalogStore is the database side of the catalog.
type CatalogStore interface {
	ProductCreate(ctx context.Context, p product.Product) (product.Product, error)
	ProductGet(ctx context.Context, id uuid.UUID) (product.Product, error)
	ProductList(ctx context.Context, after uuid.UUID, limit int) ([]product.Product, error)
	SaleCreate(ctx context.Context, s sale.Sale) (sale.Sale, error)
	SaleGet(ctx context.Context, id uuid.UUID) (sale.Sale, error)
	SalesByProduct(ctx context.Context, productID uuid.UUID) ([]sale.Sale, error)
	SaleList(ctx context.Context, f sale.ListFilter) ([]sale.Sale, error)
}

// How long catalog reads are kept. Products and lists carry stock or a
// state that moves with the clock, so they are kept briefly; a product's
// sales change only when an admin creates one, which invalidates them.
const (
	productTTL  = time.Second
	listTTL     = time.Second
	salesTTL    = 30 * time.Second
	notFoundTTL = time.Second
	versionTTL  = time.Minute
)

// Catalog serves hot catalog reads (products, sales, their lists) from the
// client-side cache through Cache, reading CatalogStore on a miss. List keys
// carry the catalog version; an admin's create bumps it, and Redis pushes
// that change to every process, so none serves the old lists again. A
// product's sales (read on every order) have their own key, deleted when a
// sale of the product is created, which saves reading the version on the
// hot path.
type Catalog struct {
	store CatalogStore
	cache *Cache
}

// NewCatalog returns the cached catalog over store.
func NewCatalog(store CatalogStore, cache *Cache) *Catalog {
	return &Catalog{store: store, cache: cache}
}

func (c *Catalog) versionKey() string { return c.cache.c.prefix + ":catalog:version" }

// version is the catalog's current version, read through client-side caching.
func (c *Catalog) version(ctx context.Context) (string, error) {
	rc := c.cache.c.rc
	v, err := rc.DoCache(ctx, rc.B().Get().Key(c.versionKey()).Cache(), versionTTL).ToString()
	if rueidis.IsRedisNil(err) {
		return "0", nil
	}
	if err != nil {
		return "", fmt.Errorf("catalog version: %w", err)
	}
	return v, nil
}

// bump moves the catalog to a new version after an admin's change, and
// waits until this process sees it, so the admin reads their own write.
func (c *Catalog) bump(ctx context.Context) error {
	rc := c.cache.c.rc
	n, err := rc.Do(ctx, rc.B().Incr().Key(c.versionKey()).Build()).AsInt64()
	if err != nil {
		return fmt.Errorf("catalog version bump: %w", err)
	}
	awaitPushed(ctx, func() bool {
		v, err := c.version(ctx)
		if err != nil {
			return true // nothing to wait for that can be read
		}
		got, err := strconv.ParseInt(v, 10, 64)
		return err != nil || got >= n
	})
	return nil
}

// getListed is get for lists, under the current catalog version.
func getListed[T any](ctx context.Context, c *Catalog, key string, ttl time.Duration, load func(context.Context) (T, error)) (T, error) {
	ver, err := c.version(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	return get(ctx, c, "v"+ver+":"+key, ttl, nil, load)
}

// get reads key, loading it with load on a miss; notFound is returned when
// load reported it missing. The value is shared with other callers (the
// cache keeps it decoded): read it, never modify it.
func get[T any](ctx context.Context, c *Catalog, key string, ttl time.Duration, notFound error, load func(context.Context) (T, error)) (T, error) {
	var zero T
	key = "catalog:" + key
	v, found, err := c.cache.Get(ctx, key, ttl, notFoundTTL, func(ctx context.Context) ([]byte, bool, error) {
		v, err := load(ctx)
		if notFound != nil && errors.Is(err, notFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		b, err := json.Marshal(v)
		return b, true, err
	}, func(raw []byte) (any, error) {
		var out T
		if err := json.Unmarshal(raw, &out); err != nil {
			return nil, fmt.Errorf("catalog %s: %w", key, err)
		}
		return out, nil
	})
	if err != nil {
		return zero, err
	}
	if !found {
		return zero, notFound
	}
	return v.(T), nil
}

// ProductCreate stores p and invalidates the catalog's lists.
func (c *Catalog) ProductCreate(ctx context.Context, p product.Product) (product.Product, error) {
	p, err := c.store.ProductCreate(ctx, p)
	if err != nil {
		return p, err
	}
	return p, c.bump(ctx)
}

// ProductGet returns the product, its stock up to productTTL old.
func (c *Catalog) ProductGet(ctx context.Context, id uuid.UUID) (product.Product, error) {
	return get(ctx, c, "p:"+id.String(), productTTL, product.ErrNotFound, func(ctx context.Context) (product.Product, error) {
		return c.store.ProductGet(ctx, id)
	})
}

// ProductList returns a page of products.
func (c *Catalog) ProductList(ctx context.Context, after uuid.UUID, limit int) ([]product.Product, error) {
	return getListed(ctx, c, fmt.Sprintf("pl:%s:%d", after, limit), listTTL, func(ctx context.Context) ([]product.Product, error) {
		return c.store.ProductList(ctx, after, limit)
	})
}

// SaleCreate stores s and invalidates the catalog (its product's sales, the lists).
func (c *Catalog) SaleCreate(ctx context.Context, s sale.Sale) (sale.Sale, error) {
	s, err := c.store.SaleCreate(ctx, s)
	if err != nil {
		return s, err
	}
	if err := c.cache.Invalidate(ctx, salesKey(s.ProductID)); err != nil {
		return s, err
	}
	return s, c.bump(ctx)
}

func salesKey(productID uuid.UUID) string { return "catalog:ps:" + productID.String() }

// SaleGet returns the sale.
func (c *Catalog) SaleGet(ctx context.Context, id uuid.UUID) (sale.Sale, error) {
	return get(ctx, c, "s:"+id.String(), salesTTL, sale.ErrNotFound, func(ctx context.Context) (sale.Sale, error) {
		return c.store.SaleGet(ctx, id)
	})
}

// SalesByProduct returns every sale of the product.
func (c *Catalog) SalesByProduct(ctx context.Context, productID uuid.UUID) ([]sale.Sale, error) {
	return get(ctx, c, "ps:"+productID.String(), salesTTL, nil, func(ctx context.Context) ([]sale.Sale, error) {
		return c.store.SalesByProduct(ctx, productID)
	})
}

// SaleOpen is the product's sale open at now, from its cached sales, judged
// by sale.Sale.OpenAt; sale.ErrNotFound when none is.
func (c *Catalog) SaleOpen(ctx context.Context, productID uuid.UUID, now time.Time) (sale.Sale, error) {
	sales, err := c.SalesByProduct(ctx, productID)
	if err != nil {
		return sale.Sale{}, err
	}
	for _, s := range sales {
		if s.OpenAt(now) {
			return s, nil
		}
	}
	return sale.Sale{}, sale.ErrNotFound
}

// SaleList returns a page of sales; the key holds f.Now to the second, so a
// page is at most a second behind the clock.
func (c *Catalog) SaleList(ctx context.Context, f sale.ListFilter) ([]sale.Sale, error) {
	f.Now = f.Now.Truncate(time.Second)
	key := fmt.Sprintf("sl:%d:%t%t%t:%s:%d", f.Now.Unix(), f.Upcoming, f.Active, f.Ended, f.After, f.Limit)
	return getListed(ctx, c, key, listTTL, func(ctx context.Context) ([]sale.Sale, error) {
		return c.store.SaleList(ctx, f)
	})
}

// Stats reports the cache's hits and misses, for the hit-ratio metric.
func (c *Catalog) Stats() (hits, misses uint64) { return c.cache.Stats() }
