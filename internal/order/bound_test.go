package order_test

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"

	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/postgres"
	"github.com/flashsale/flashsale/internal/postgres/pgtest"
	"github.com/flashsale/flashsale/internal/product"
	"github.com/flashsale/flashsale/internal/redis"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testenv"
)

// TestAcksKeptUnderReconcile attacks the gate's bound (units it may admit +
// orders in flight <= the product's stock in PostgreSQL) with real
// PostgreSQL and Redis: one product, two back-to-back sales of it (the
// second opens during the run), buyers in both, workers kept behind by a
// slow store, and reconciles of both sales (one of them upcoming) running
// in a tight loop all along. The old gate (per-sale stock, an unlocked,
// cached snapshot) acknowledged more orders than PostgreSQL took here.
// Afterwards every acknowledgment must be in PostgreSQL with its order id,
// nothing oversold, and the gate's stock equal to PostgreSQL's.
func TestAcksKeptUnderReconcile(t *testing.T) {
	for _, mode := range []order.Mode{order.ModeQueue, order.ModeSync} {
		t.Run(string(mode), func(t *testing.T) { testAcksKept(t, mode) })
	}
}

func testAcksKept(t *testing.T, mode order.Mode) {
	const (
		stock  = 300
		buyers = 600
	)
	ctx := t.Context()
	dbURL := pgtest.NewDatabase(t)
	store, err := postgres.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	rc := newRedis(t)

	p, err := store.ProductCreate(ctx, product.Product{ID: uuid.New(), Name: "p", PriceMinor: 100, Currency: "EUR", Quantity: stock})
	if err != nil {
		t.Fatal(err)
	}
	boundary := time.Now().Add(1500 * time.Millisecond).Truncate(time.Millisecond)
	saleA, err := store.SaleCreate(ctx, sale.Sale{ID: uuid.New(), ProductID: p.ID, StartsAt: time.Now().Add(-time.Minute), EndsAt: boundary})
	if err != nil {
		t.Fatal(err)
	}
	saleB, err := store.SaleCreate(ctx, sale.Sale{ID: uuid.New(), ProductID: p.ID, StartsAt: boundary, EndsAt: boundary.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	users := insertUsers(t, pool, buyers)

	gate := redis.NewGate(rc)
	// A slow store keeps the workers (or batches) behind, so orders sit in
	// flight while the reconciles run and while the second sale opens.
	slow := &slowStore{BatchStore: store, delay: 20 * time.Millisecond}
	cfg := order.Config{Mode: mode, Gate: gate, Admissions: gate, MaxQueued: 1_000_000}
	var workers sync.WaitGroup
	stopWorkers := func() {}
	switch mode {
	case order.ModeSync:
		b := order.NewBatcher(slow, 20, time.Millisecond, nil, order.WithSettler(gate))
		t.Cleanup(b.Close)
		cfg.Batcher = b
	case order.ModeQueue:
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		stopWorkers = cancel
		q := redis.NewQueue(rc)
		for i := range 2 {
			w := order.NewWorker(q, slow, gate, fmt.Sprintf("w%d", i), 20, time.Second, nil)
			workers.Go(func() { _ = w.Run(wctx) })
		}
	}
	defer func() { stopWorkers(); workers.Wait() }()
	svc := order.NewService(store, time.Now, cfg)

	// Reconcile both sales (B is upcoming for the first part) without pause.
	rctx, stopReconcile := context.WithCancel(ctx)
	var reconciles atomic.Int64
	var reconciler sync.WaitGroup
	reconciler.Go(func() {
		for i := 0; rctx.Err() == nil; i++ {
			id := saleA.ID
			if i%2 == 1 {
				id = saleB.ID
			}
			if _, _, err := svc.Reconcile(rctx, id); err != nil && rctx.Err() == nil {
				t.Errorf("reconcile: %v", err)
				return
			}
			reconciles.Add(1)
		}
	})

	// Every user tries until the end of the run, in whichever sale is open,
	// and keeps every acknowledgment it gets.
	type ack struct {
		user, order uuid.UUID
		sale        uuid.UUID
		how         string
	}
	var mu sync.Mutex
	var acks []ack
	deadline := boundary.Add(1500 * time.Millisecond)
	var buyersWG sync.WaitGroup
	for w := range 16 {
		buyersWG.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for time.Now().Before(deadline) {
				// Paced, so the units last through the run and orders are
				// admitted, written and reconciled at the same time.
				time.Sleep(time.Duration(r.IntN(40)) * time.Millisecond)
				u := users[r.IntN(len(users))]
				o, err := svc.Place(ctx, u, p.ID)
				var held *order.AlreadyOrderedError
				switch {
				case err == nil:
					mu.Lock()
					acks = append(acks, ack{u, o.ID, o.SaleID, o.Status.String()})
					mu.Unlock()
				case errors.As(err, &held):
					mu.Lock()
					acks = append(acks, ack{u, held.OrderID, uuid.Nil, "ALREADY_ORDERED"})
					mu.Unlock()
				case errors.Is(err, order.ErrSoldOut), errors.Is(err, order.ErrSaleNotActive), errors.Is(err, order.ErrInProgress):
				default:
					t.Errorf("place: %v", err)
					return
				}
			}
		})
	}
	buyersWG.Wait()
	stopReconcile()
	reconciler.Wait()
	if reconciles.Load() < 10 {
		t.Fatalf("only %d reconciles ran during the rush", reconciles.Load())
	}
	// However slow the box was, every user now tries once more in the open
	// sale, so the stock runs out unless the gate leaked units.
	for _, u := range users {
		o, err := svc.Place(ctx, u, p.ID)
		switch {
		case err == nil:
			acks = append(acks, ack{u, o.ID, o.SaleID, o.Status.String()})
		case errors.Is(err, order.ErrSoldOut), errors.Is(err, order.ErrAlreadyOrdered), errors.Is(err, order.ErrInProgress):
		default:
			t.Fatalf("place after the rush: %v", err)
		}
	}

	// Let the writers catch up.
	waitUntil(t, 30*time.Second, "queue drained", func() bool {
		n, err := redis.NewQueue(rc).Backlog(ctx, p.ID)
		return err == nil && n == 0
	})

	stored := map[uuid.UUID]uuid.UUID{} // order -> user
	rows, err := pool.Query(ctx, `SELECT id, user_id FROM orders WHERE product_id = $1`, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, user uuid.UUID
		if err := rows.Scan(&id, &user); err != nil {
			t.Fatal(err)
		}
		stored[id] = user
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var left int32
	if err := pool.QueryRow(ctx, `SELECT quantity FROM products WHERE id = $1`, p.ID).Scan(&left); err != nil {
		t.Fatal(err)
	}

	var lost []string
	pending := 0
	for _, a := range acks {
		if a.how == "PENDING" {
			pending++
		}
		if u, ok := stored[a.order]; !ok || u != a.user {
			lost = append(lost, fmt.Sprintf("%s %s of user %s", a.how, a.order, a.user))
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d acknowledgments not in PostgreSQL, e.g. %v", len(lost), len(acks), lost[:min(len(lost), 10)])
	}
	if got := len(stored) + int(left); got != stock || left < 0 {
		t.Errorf("sold %d + left %d = %d, want stock %d", len(stored), left, got, stock)
	}
	if left != 0 {
		t.Errorf("%d units left with %d buyers wanting them: the gate leaked units", left, buyers)
	}
	remaining, loaded, err := gate.Remaining(ctx, p.ID)
	if err != nil || !loaded || remaining != left {
		t.Errorf("gate remaining = %d (loaded %v, err %v), PostgreSQL has %d", remaining, loaded, err, left)
	}
	t.Logf("%s: %d acks (%d pending), %d stored, %d reconciles during the run", mode, len(acks), pending, len(stored), reconciles.Load())
}

// slowStore delays every batch.
type slowStore struct {
	order.BatchStore
	delay time.Duration
}

func (s *slowStore) OrderInsertBatch(ctx context.Context, orders []order.Order) ([]error, error) {
	time.Sleep(s.delay)
	return s.BatchStore.OrderInsertBatch(ctx, orders)
}

func insertUsers(t *testing.T, pool *pgxpool.Pool, n int) []uuid.UUID {
	t.Helper()
	ids := make([]uuid.UUID, n)
	emails := make([]string, n)
	for i := range ids {
		ids[i] = uuid.New()
		emails[i] = ids[i].String() + "@example.com"
	}
	_, err := pool.Exec(t.Context(), `INSERT INTO users (id, email, password_hash)
		SELECT unnest($1::uuid[]), unnest($2::text[]), 'x'`, ids, emails)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func newRedis(t *testing.T) *redis.Client {
	t.Helper()
	b := make([]byte, 8)
	_, _ = crand.Read(b)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := redis.New(ctx, testenv.RedisURL(), redis.WithKeyPrefix("fstest-"+hex.EncodeToString(b)))
	if err != nil {
		testenv.Missing(t, "redis not reachable at %s: %v", testenv.RedisURL(), err)
	}
	prefix := "fstest-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		c.Close()
		// Never FLUSH a shared Redis: delete this test's keys only.
		opt, err := rueidis.ParseURL(testenv.RedisURL())
		if err != nil {
			return
		}
		opt.DisableCache = true
		raw, err := rueidis.NewClient(opt)
		if err != nil {
			return
		}
		defer raw.Close()
		ctx := context.Background()
		var cursor uint64
		for {
			e, err := raw.Do(ctx, raw.B().Scan().Cursor(cursor).Match(prefix+":*").Count(1000).Build()).AsScanEntry()
			if err != nil {
				return
			}
			if len(e.Elements) > 0 {
				raw.Do(ctx, raw.B().Del().Key(e.Elements...).Build())
			}
			if cursor = e.Cursor; cursor == 0 {
				return
			}
		}
	})
	return c
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
