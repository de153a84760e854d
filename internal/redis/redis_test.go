package redis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/redis"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testenv"
)

// redisURL is the Redis t runs against: the private cluster of
// TestCluster for its subtests, else the shared one (TEST_REDIS_URL).
func redisURL(t testing.TB) string {
	if strings.HasPrefix(t.Name(), "TestCluster/") {
		return onCluster.url
	}
	return testenv.RedisURL()
}

// newPrefix is a key prefix no other test uses.
func newPrefix() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "fstest-" + hex.EncodeToString(b)
}

// newClient connects with a fresh key prefix whose keys are deleted (SCAN +
// DEL, never FLUSH) when the test ends. It skips when Redis is unreachable,
// unless CI=true.
func newClient(t testing.TB) *redis.Client {
	t.Helper()
	return newClientPrefix(t, newPrefix())
}

func newClientPrefix(t testing.TB, prefix string) *redis.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := redis.New(ctx, redisURL(t), redis.WithKeyPrefix(prefix))
	if err != nil {
		testenv.Missing(t, "redis not reachable at %s (set TEST_REDIS_URL): %v", redisURL(t), err)
	}
	t.Cleanup(func() {
		deletePrefix(t, prefix)
		c.Close()
	})
	return c
}

// deletePrefix deletes every key under prefix.
func deletePrefix(t testing.TB, prefix string) {
	t.Helper()
	rc := newRaw(t)
	defer rc.Close()
	for _, k := range scanKeys(t, rc, prefix+":*") {
		if err := rc.Do(context.Background(), rc.B().Del().Key(k).Build()).Error(); err != nil {
			t.Fatalf("cleanup del: %v", err)
		}
	}
}

// scanKeys is every key matching pattern, on every master of a cluster.
func scanKeys(t testing.TB, rc rueidis.Client, pattern string) []string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	for addr, n := range rc.Nodes() {
		role, err := n.Do(ctx, n.B().Role().Build()).ToArray()
		if err != nil {
			t.Fatalf("ROLE of %s: %v", addr, err)
		}
		if r, _ := role[0].ToString(); r != "master" {
			continue
		}
		cursor := uint64(0)
		for {
			e, err := n.Do(ctx, n.B().Scan().Cursor(cursor).Match(pattern).Count(1000).Build()).AsScanEntry()
			if err != nil {
				t.Fatalf("SCAN: %v", err)
			}
			keys = append(keys, e.Elements...)
			if e.Cursor == 0 {
				break
			}
			cursor = e.Cursor
		}
	}
	return keys
}

func newID() uuid.UUID {
	return uuid.Must(uuid.NewV7())
}

// openSale is a sale, of a product of its own, open now by any clock within
// an hour of this one.
func openSale() sale.Sale {
	return saleOf(newID())
}

// saleOf is another sale of the product, open now.
func saleOf(productID uuid.UUID) sale.Sale {
	now := time.Now()
	return sale.Sale{ID: newID(), ProductID: productID, StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour)}
}

// stateOf is the PostgreSQL state of sl's product with quantity units left
// and sl's buyers.
func stateOf(sl sale.Sale, quantity int32, buyers map[uuid.UUID]uuid.UUID) order.ProductState {
	return order.ProductState{
		ProductID: sl.ProductID,
		Quantity:  quantity,
		Sales:     []order.SaleBuyers{{Sale: sl, Buyers: buyers}},
	}
}

// mustLoad loads sl's product with quantity units and sl with buyers.
func mustLoad(t testing.TB, g *redis.Gate, sl sale.Sale, quantity int32, buyers map[uuid.UUID]uuid.UUID) {
	t.Helper()
	mustLoadState(t, g, stateOf(sl, quantity, buyers))
}

func mustLoadState(t testing.TB, g *redis.Gate, st order.ProductState) {
	t.Helper()
	if err := g.Load(t.Context(), st); err != nil {
		t.Fatalf("Load: %v", err)
	}
}

// mustReconcile reconciles st and checks that the remaining stock it returns
// is what Remaining reads.
func mustReconcile(t testing.TB, g *redis.Gate, st order.ProductState) int32 {
	t.Helper()
	n, err := g.Reconcile(t.Context(), st)
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if got := remaining(t, g, st.ProductID); got != n {
		t.Fatalf("Reconcile returned %d, Remaining = %d", n, got)
	}
	return n
}

// attempt is an admission of a new order by user in sl (sync mode).
func attempt(sl sale.Sale, user uuid.UUID) order.Admission {
	return order.Admission{
		Order: order.Order{
			ID: newID(), SaleID: sl.ID, ProductID: sl.ProductID, UserID: user,
			Status: order.StatusPending, CreatedAt: time.Now().UTC().Truncate(time.Millisecond),
		},
		Sale: sl,
	}
}

// queued is attempt in queue mode, with room in the stream.
func queued(sl sale.Sale, user uuid.UUID) order.Admission {
	a := attempt(sl, user)
	a.Queue, a.MaxQueued = true, 1000
	return a
}

// mustAdmit puts a to the gate, checks the decision and returns the order id
// the gate says the user holds (uuid.Nil unless denied as a holder).
func mustAdmit(t testing.TB, g *redis.Gate, a order.Admission, want order.Decision) uuid.UUID {
	t.Helper()
	got, held, err := g.Admit(t.Context(), a)
	if err != nil {
		t.Fatalf("Admit: %v", err)
	}
	if got != want {
		t.Fatalf("Admit = %v, want %v", got, want)
	}
	switch got {
	case order.DeniedAlreadyAdmitted, order.DeniedInProgress:
		if held == uuid.Nil {
			t.Fatalf("Admit = %v without the held order", got)
		}
	default:
		if held != uuid.Nil {
			t.Fatalf("Admit = %v with held order %v, want none", got, held)
		}
	}
	return held
}

// mustHold checks that the user's next attempt in sl is denied with want,
// naming order held.
func mustHold(t testing.TB, g *redis.Gate, sl sale.Sale, user uuid.UUID, want order.Decision, held uuid.UUID) {
	t.Helper()
	if got := mustAdmit(t, g, attempt(sl, user), want); got != held {
		t.Fatalf("Admit held order = %v, want %v", got, held)
	}
}

func mustSettle(t testing.TB, g *redis.Gate, ss ...order.Settlement) {
	t.Helper()
	if err := g.Settle(t.Context(), ss); err != nil {
		t.Fatalf("Settle: %v", err)
	}
}

// settlement is o's settlement with outcome, ref "" (sync mode).
func settlement(o order.Order, outcome order.Outcome) order.Settlement {
	return order.Settlement{Order: o, Outcome: outcome}
}

func remaining(t testing.TB, g *redis.Gate, productID uuid.UUID) int32 {
	t.Helper()
	n, loaded, err := g.Remaining(t.Context(), productID)
	if err != nil {
		t.Fatalf("Remaining: %v", err)
	}
	if !loaded {
		t.Fatalf("Remaining: product not loaded")
	}
	return n
}

func wantRemaining(t testing.TB, g *redis.Gate, productID uuid.UUID, want int32, why string) {
	t.Helper()
	if got := remaining(t, g, productID); got != want {
		t.Errorf("Remaining %s = %d, want %d", why, got, want)
	}
}

// productKey is the key of the product's state named name (meta, stock,
// status, stream, inflight) under prefix.
func productKey(prefix string, productID uuid.UUID, name string) string {
	return prefix + ":{p:" + productID.String() + "}:" + name
}

// saleKey is the key of the sale's state named name (meta, buyers, rejected).
func saleKey(prefix string, sl sale.Sale, name string) string {
	return productKey(prefix, sl.ProductID, "s:"+sl.ID.String()+":"+name)
}

// rawClient is a plain connection for tests that look behind the package.
func rawClient(t testing.TB) rueidis.Client {
	t.Helper()
	rc := newRaw(t)
	t.Cleanup(rc.Close)
	return rc
}

// newRaw is rawClient that the caller closes.
func newRaw(t testing.TB) rueidis.Client {
	t.Helper()
	opt, err := rueidis.ParseURL(redisURL(t))
	if err != nil {
		t.Fatalf("ParseURL: %v", err)
	}
	opt.DisableCache = true
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	return rc
}
