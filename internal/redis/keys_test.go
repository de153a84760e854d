package redis_test

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/product"
	"github.com/flashsale/flashsale/internal/redis"
	"github.com/flashsale/flashsale/internal/sale"
)

// documentedKeys is the key list of the package doc (client.go): each
// "//\t<prefix>:..." line's pattern, its <placeholders> turned into
// wildcards (<key> may span colons, the others may not).
func documentedKeys(t *testing.T) map[string]*regexp.Regexp {
	t.Helper()
	f, err := os.Open("client.go")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	placeholder := regexp.MustCompile(`<[^>]+>`)
	out := map[string]*regexp.Regexp{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "//\t<prefix>:")
		if !ok {
			continue
		}
		pattern, _, _ := strings.Cut(line, "  ") // the description starts after a run of spaces
		re := placeholder.ReplaceAllStringFunc(regexp.QuoteMeta(pattern), func(p string) string {
			if p == "<key>" {
				return ".+"
			}
			return "[^:]+"
		})
		out[pattern] = regexp.MustCompile("^" + re + "$")
	}
	if len(out) == 0 {
		t.Fatal("no key list found in client.go's package doc")
	}
	return out
}

// TestKeysDocumented: every key the package writes matches a line of the
// key list in its doc, and every line there matches a key the package
// writes, so the list can neither miss a key nor keep one that is gone.
func TestKeysDocumented(t *testing.T) {
	t.Parallel()
	prefix := newPrefix()
	c := newClientPrefix(t, prefix)
	ctx := t.Context()

	// The gate in both modes, with an order rejected and one still in flight.
	g := redis.NewGate(c)
	sl := openSale()
	mustLoad(t, g, sl, 10, map[uuid.UUID]uuid.UUID{newID(): newID()})
	rejected, inFlight := attempt(sl, newID()), attempt(sl, newID())
	mustAdmit(t, g, rejected, order.Admitted)
	mustAdmit(t, g, inFlight, order.Admitted)
	mustAdmit(t, g, queued(sl, newID()), order.Admitted)
	if err := g.Settle(ctx, []order.Settlement{{Order: rejected.Order, Outcome: order.RejectedSoldOut}}); err != nil {
		t.Fatalf("Settle: %v", err)
	}

	// A named limiter and the login backoff.
	named, err := redis.NewLimiter(c, "signin-ip", 5, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := named.Allow(ctx, "192.0.2.1"); err != nil {
		t.Fatalf("Limiter.Allow: %v", err)
	}
	backoff, err := redis.NewLoginBackoff(c, 5, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backoff.Begin(ctx, "someone@example.com"); err != nil {
		t.Fatalf("LoginBackoff.Begin: %v", err)
	}

	// The per-user limiter.
	lim, err := redis.NewUserLimiter(c, 5, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := lim.Allow(ctx, newID()); err != nil {
		t.Fatalf("Allow: %v", err)
	}

	// The catalog: a create (which bumps the version) and every read.
	store := &fakeCatalog{products: map[uuid.UUID]product.Product{}}
	cat := redis.NewCatalog(store, redis.NewCache(c))
	p, err := cat.ProductCreate(ctx, product.Product{ID: newID(), Name: "Widget", Currency: "EUR", Quantity: 1})
	if err != nil {
		t.Fatalf("ProductCreate: %v", err)
	}
	now := time.Now()
	s, err := cat.SaleCreate(ctx, sale.Sale{ID: newID(), ProductID: p.ID, StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatalf("SaleCreate: %v", err)
	}
	if _, err := cat.ProductGet(ctx, p.ID); err != nil {
		t.Fatalf("ProductGet: %v", err)
	}
	if _, err := cat.ProductList(ctx, uuid.Nil, 10); err != nil {
		t.Fatalf("ProductList: %v", err)
	}
	if _, err := cat.SaleGet(ctx, s.ID); err != nil {
		t.Fatalf("SaleGet: %v", err)
	}
	if _, err := cat.SalesByProduct(ctx, p.ID); err != nil {
		t.Fatalf("SalesByProduct: %v", err)
	}
	if _, err := cat.SaleList(ctx, sale.ListFilter{Now: now, Active: true, Limit: 10}); err != nil {
		t.Fatalf("SaleList: %v", err)
	}

	rc := rawClient(t)
	var keys []string
	for cursor := uint64(0); ; {
		e, err := rc.Do(ctx, rc.B().Scan().Cursor(cursor).Match(prefix+":*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Fatalf("SCAN: %v", err)
		}
		keys = append(keys, e.Elements...)
		if cursor = e.Cursor; cursor == 0 {
			break
		}
	}
	slices.Sort(keys)

	documented := documentedKeys(t)
	used := map[string]bool{}
	for _, k := range keys {
		rest := strings.TrimPrefix(k, prefix+":")
		var matched bool
		for pattern, re := range documented {
			if re.MatchString(rest) {
				used[pattern], matched = true, true
			}
		}
		if !matched {
			t.Errorf("key <prefix>:%s is missing from the key list in client.go's package doc", rest)
		}
	}
	for pattern := range documented {
		if !used[pattern] {
			t.Errorf("client.go's package doc lists <prefix>:%s, which no key matched (keys: %q)", pattern, keys)
		}
	}
}
