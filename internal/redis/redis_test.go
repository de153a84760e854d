package redis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/redis"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testenv"
)

func redisURL() string { return testenv.RedisURL() }

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
	c, err := redis.New(ctx, redisURL(), redis.WithKeyPrefix(prefix))
	if err != nil {
		testenv.Missing(t, "redis not reachable at %s (set TEST_REDIS_URL): %v", redisURL(), err)
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
	opt, err := rueidis.ParseURL(redisURL())
	if err != nil {
		t.Fatalf("ParseURL: %v", err)
	}
	opt.DisableCache = true
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatalf("cleanup connect: %v", err)
	}
	defer rc.Close()
	ctx := context.Background()
	cursor := uint64(0)
	for {
		e, err := rc.Do(ctx, rc.B().Scan().Cursor(cursor).Match(prefix+":*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Fatalf("cleanup scan: %v", err)
		}
		if len(e.Elements) > 0 {
			for _, k := range e.Elements {
				if err := rc.Do(ctx, rc.B().Del().Key(k).Build()).Error(); err != nil {
					t.Fatalf("cleanup del: %v", err)
				}
			}
		}
		if e.Cursor == 0 {
			return
		}
		cursor = e.Cursor
	}
}

func newID() uuid.UUID {
	return uuid.Must(uuid.NewV7())
}

// openSale is a sale open now by any clock within an hour of this one.
func openSale() sale.Sale {
	now := time.Now()
	return sale.Sale{ID: newID(), ProductID: newID(), StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour)}
}

func mustLoad(t testing.TB, g *redis.Gate, sl sale.Sale, remaining int32, buyers map[uuid.UUID]uuid.UUID) {
	t.Helper()
	if err := g.Load(t.Context(), order.GateState{Sale: sl, Remaining: remaining, Buyers: buyers}); err != nil {
		t.Fatalf("Load: %v", err)
	}
}

// attempt is an admission of a new order by user in sl.
func attempt(sl sale.Sale, user uuid.UUID) order.Admission {
	return order.Admission{
		Order: order.Order{
			ID: newID(), SaleID: sl.ID, ProductID: sl.ProductID, UserID: user,
			Status: order.StatusPending, CreatedAt: time.Now().UTC().Truncate(time.Millisecond),
		},
		Sale: sl,
	}
}

func mustAdmit(t testing.TB, g *redis.Gate, a order.Admission, want order.Decision) {
	t.Helper()
	got, err := g.Admit(t.Context(), a)
	if err != nil {
		t.Fatalf("Admit: %v", err)
	}
	if got != want {
		t.Fatalf("Admit = %v, want %v", got, want)
	}
}

func remaining(t testing.TB, g *redis.Gate, saleID uuid.UUID) int32 {
	t.Helper()
	n, loaded, err := g.Remaining(t.Context(), saleID)
	if err != nil {
		t.Fatalf("Remaining: %v", err)
	}
	if !loaded {
		t.Fatalf("Remaining: sale not loaded")
	}
	return n
}

// rawClient is a plain connection for tests that look behind the package.
func rawClient(t testing.TB) rueidis.Client {
	t.Helper()
	opt, err := rueidis.ParseURL(redisURL())
	if err != nil {
		t.Fatalf("ParseURL: %v", err)
	}
	opt.DisableCache = true
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(rc.Close)
	return rc
}
