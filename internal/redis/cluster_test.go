package redis_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/redis"
	"github.com/flashsale/flashsale/internal/redis/clustertest"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testenv"
)

// onCluster is the private cluster TestCluster runs its subtests on; they
// find it through redisURL.
var onCluster struct {
	url string
	c   *clustertest.Cluster
}

// TestCluster runs the gate, queue, cache and catalog tests again on a
// private six-node Redis Cluster (three masters, three replicas), where
// every script and multi-key command must stay in one slot and the streams
// of products on different masters are read by one worker, and then the
// tests of what only a cluster has.
func TestCluster(t *testing.T) {
	testenv.Long(t, "starts a six-node Redis Cluster")
	c := clustertest.Start(t)
	onCluster.url, onCluster.c = c.URL(), c
	for _, tt := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"GateAdmitRace", TestGateAdmitRace},
		{"GateAdmitRaceTwoSales", TestGateAdmitRaceTwoSales},
		{"GateAdmitSameUser", TestGateAdmitSameUser},
		{"GateWindow", TestGateWindow},
		{"GateNotLoaded", TestGateNotLoaded},
		{"GateLoadKeepsState", TestGateLoadKeepsState},
		{"GateLoadNewSale", TestGateLoadNewSale},
		{"GateSharedStock", TestGateSharedStock},
		{"GateHeldOrder", TestGateHeldOrder},
		{"GateQueueMode", TestGateQueueMode},
		{"GateSettle", TestGateSettle},
		{"GateSettleNotInFlight", TestGateSettleNotInFlight},
		{"GateSettleAfterExpiry", TestGateSettleAfterExpiry},
		{"GateKeysExpire", TestGateKeysExpire},
		{"GateSettleOtherOrderKeepsBuyer", TestGateSettleOtherOrderKeepsBuyer},
		{"GateSettleBatch", TestGateSettleBatch},
		{"GateReconcile", TestGateReconcile},
		{"GateReconcileInFlight", TestGateReconcileInFlight},
		{"GateReconcileKeepsQueued", TestGateReconcileKeepsQueued},
		{"GatePending", TestGatePending},
		{"GateHolder", TestGateHolder},
		{"GateStatusCache", TestGateStatusCache},
		{"GateStatusPerProduct", TestGateStatusPerProduct},
		{"GateStatusCoarse", TestGateStatusCoarse},
		{"QueueReadSettle", TestQueueReadSettle},
		{"QueueProductStream", TestQueueProductStream},
		{"QueueClaimDeadConsumer", TestQueueClaimDeadConsumer},
		{"QueueSettleTwice", TestQueueSettleTwice},
		{"QueueDropsDrainedStreams", TestQueueDropsDrainedStreams},
		{"CacheHitMiss", TestCacheHitMiss},
		{"CacheNegative", TestCacheNegative},
		{"CacheInvalidate", TestCacheInvalidate},
		{"CacheConcurrent", TestCacheConcurrent},
		{"Catalog", TestCatalog},
		{"LimiterTakeMany", TestLimiterTakeMany},
		{"ProductsOnEveryMaster", testProductsOnEveryMaster},
		{"ConfirmedAdmissions", testConfirmedAdmissions},
	} {
		t.Run(tt.name, tt.fn)
	}
}

// productOn is a new product id whose keys live in a slot that master
// serves.
func productOn(t testing.TB, c *clustertest.Cluster, master *clustertest.Node) uuid.UUID {
	t.Helper()
	shards, err := c.Shards(t.Context())
	if err != nil {
		t.Fatalf("shards: %v", err)
	}
	for range 10000 {
		id := newID()
		slot := redis.ProductSlot(id)
		for _, s := range shards {
			if s.From <= slot && slot <= s.To && s.Master == master.Addr() {
				return id
			}
		}
	}
	t.Fatalf("no product id found on %s", master.Addr())
	return uuid.Nil
}

// productsOnEveryMaster is one open sale per master, each of a product of
// its own.
func productsOnEveryMaster(t testing.TB, c *clustertest.Cluster) []sale.Sale {
	t.Helper()
	masters, err := c.Masters(t.Context())
	if err != nil {
		t.Fatalf("masters: %v", err)
	}
	if len(masters) != 3 {
		t.Fatalf("%d masters, want 3", len(masters))
	}
	var sales []sale.Sale
	for _, m := range masters {
		sales = append(sales, saleOf(productOn(t, c, m)))
	}
	return sales
}

// testProductsOnEveryMaster: three products whose slots three different
// masters serve; one Queue reads all their streams (the worker that died
// with CROSSSLOT before), in batches smaller than the backlog, and the
// settled entries leave the streams.
func testProductsOnEveryMaster(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	g, q := redis.NewGate(c), redis.NewQueue(c)
	sales := productsOnEveryMaster(t, onCluster.c)
	var want []order.Order
	for _, sl := range sales {
		mustLoad(t, g, sl, 10, nil)
		want = append(want, admitQueued(t, g, sl, 4)...)
	}
	var got []order.QueuedOrder
	for len(got) < len(want) {
		batch, err := q.Read(t.Context(), "w1", 5, 100*time.Millisecond, time.Hour)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if len(batch) == 0 {
			t.Fatalf("Read returned nothing with %d of %d entries read", len(got), len(want))
		}
		if len(batch) > 5 {
			t.Fatalf("Read returned %d entries, want at most 5", len(batch))
		}
		settleAll(t, g, batch, order.Committed)
		got = append(got, batch...)
	}
	if !slices.Equal(ids(got), orderIDs(want)) {
		t.Errorf("read %v, want %v", ids(got), orderIDs(want))
	}
	for _, sl := range sales {
		if n, err := q.Backlog(t.Context(), sl.ProductID); err != nil || n != 0 {
			t.Errorf("Backlog of %s = %d, %v, want 0", sl.ProductID, n, err)
		}
		wantRemaining(t, g, sl.ProductID, 6, "after 4 committed")
	}
	// A blocked read wakes for an order on any master.
	for _, sl := range sales {
		done := make(chan []order.QueuedOrder, 1)
		go func() {
			got, err := q.Read(t.Context(), "w1", 10, 5*time.Second, time.Hour)
			if err != nil {
				t.Errorf("Read: %v", err)
			}
			done <- got
		}()
		time.Sleep(20 * time.Millisecond)
		more := admitQueued(t, g, sl, 1)
		got := <-done
		if len(got) == 0 {
			got, _ = q.Read(t.Context(), "w1", 10, time.Second, time.Hour)
		}
		if !slices.Equal(ids(got), orderIDs(more)) {
			t.Errorf("Read after an order on %s = %v, want %v", sl.ProductID, ids(got), orderIDs(more))
		}
		settleAll(t, g, got, order.Committed)
	}
}

// replicatedClient is newClient waiting for min replicas on queued orders.
func replicatedClient(t testing.TB, url string, min int, timeout time.Duration) *redis.Client {
	t.Helper()
	prefix := newPrefix()
	c, err := redis.New(t.Context(), url, redis.WithKeyPrefix(prefix), redis.WithReplicas(min, timeout))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// testConfirmedAdmissions: with a replica required, queue-mode admissions,
// answers to holders and worker reads go through as before while every
// replica is up (auto picks 1 on this cluster); asking for more replicas
// than a master has gives ErrNotReplicated, with the order admitted anyway
// and its retry answered with it.
func testConfirmedAdmissions(t *testing.T) {
	t.Parallel()
	c := replicatedClient(t, onCluster.url, -1, 500*time.Millisecond)
	if n, _ := c.MinReplicas(); n != 1 {
		t.Fatalf("auto MinReplicas = %d on a cluster with replicas, want 1", n)
	}
	g, q := redis.NewGate(c), redis.NewQueue(c)
	sales := productsOnEveryMaster(t, onCluster.c)
	for _, sl := range sales {
		mustLoad(t, g, sl, 5, nil)
		a := queued(sl, newID())
		mustAdmit(t, g, a, order.Admitted)
		mustHold(t, g, sl, a.Order.UserID, order.DeniedAlreadyAdmitted, a.Order.ID)
	}
	got, err := q.Read(t.Context(), "w1", 10, 0, time.Hour)
	if err != nil || len(got) != 3 {
		t.Fatalf("Read = %d, %v, want 3, nil", len(got), err)
	}

	// Two replicas per master are more than there are: nothing confirms.
	greedy := replicatedClient(t, onCluster.url, 2, 50*time.Millisecond)
	gg := redis.NewGate(greedy)
	sl := sales[0]
	mustLoadState(t, gg, stateOf(sl, 5, nil))
	a := queued(sl, newID())
	d, held, err := gg.Admit(t.Context(), a)
	if d != order.Admitted || held != uuid.Nil || !errors.Is(err, order.ErrNotReplicated) {
		t.Fatalf("Admit = %v, %v, %v, want Admitted with ErrNotReplicated", d, held, err)
	}
	d, held, err = gg.Admit(t.Context(), queued(sl, a.Order.UserID))
	if d != order.DeniedAlreadyAdmitted || held != a.Order.ID || !errors.Is(err, order.ErrNotReplicated) {
		t.Fatalf("retry = %v, %v, %v, want DeniedAlreadyAdmitted %v with ErrNotReplicated", d, held, err, a.Order.ID)
	}
	// A refusal has nothing to confirm.
	if _, err := gg.Reconcile(t.Context(), stateOf(sl, 0, nil)); err != nil {
		t.Fatal(err)
	}
	if d, _, err := gg.Admit(t.Context(), queued(sl, newID())); d != order.DeniedSoldOut || err != nil {
		t.Fatalf("Admit on no stock = %v, %v, want DeniedSoldOut, nil", d, err)
	}
	// A worker that requires two replicas does not hand the entry out.
	gq := redis.NewQueue(greedy)
	got, err = gq.Read(t.Context(), "w1", 10, 0, time.Hour)
	if len(got) != 0 || !errors.Is(err, redis.ErrUnconfirmed) {
		t.Fatalf("Read = %d, %v, want 0, ErrUnconfirmed", len(got), err)
	}
	// Sync mode never waits.
	if d, _, err := gg.Admit(t.Context(), attempt(saleOfLoaded(t, gg, 1), newID())); d != order.Admitted || err != nil {
		t.Fatalf("sync-mode Admit = %v, %v, want Admitted, nil", d, err)
	}
}

// saleOfLoaded is a new open sale, of a new product with quantity units,
// loaded into g.
func saleOfLoaded(t testing.TB, g *redis.Gate, quantity int32) sale.Sale {
	t.Helper()
	sl := openSale()
	mustLoad(t, g, sl, quantity, nil)
	return sl
}

// TestClusterFailover kills, on a cluster of its own, the master serving a
// product's slot (kill -9), lets its replica take over, and checks what
// must hold across it: client-side cached reads in another process see the
// new master's value (the old connection's cache is dropped); with a
// replica required, an admission on the new master, which has no replica
// until the old one rejoins, answers ErrNotReplicated and a worker does not
// take its entry, until the old master is back as a replica; the watcher
// reports the moved slot and only it; and the products on the other
// masters never notice.
func TestClusterFailover(t *testing.T) {
	testenv.Long(t, "starts a six-node Redis Cluster and fails a master over")
	cl := clustertest.Start(t)
	ctx := t.Context()
	const timeout = 300 * time.Millisecond
	prefix := newPrefix()
	a, err := redis.New(ctx, cl.URL(), redis.WithKeyPrefix(prefix), redis.WithReplicas(-1, timeout))
	if err != nil { // "process A": admits
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	b, err := redis.New(ctx, cl.URL(), redis.WithKeyPrefix(prefix))
	if err != nil { // "process B": reads statuses through its cache
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ga, gb, qa := redis.NewGate(a), redis.NewGate(b), redis.NewQueue(a)

	sales := productsOnEveryMaster(t, cl)
	for _, sl := range sales {
		mustLoad(t, ga, sl, 4, nil) // step 1: every admission republishes
	}
	var moved []*redis.Moved
	var movedMu sync.Mutex
	w := redis.NewWatcher(b, redis.WatchConfig{
		Poll: 50 * time.Millisecond,
		OnFailover: func(_ context.Context, m *redis.Moved) error {
			movedMu.Lock()
			defer movedMu.Unlock()
			moved = append(moved, m)
			return nil
		},
	})
	runWatcher(t, w)

	// B caches each status; an admission on each master reaches it.
	for _, sl := range sales {
		wantStatus(t, gb, sl, 4)
		mustAdmit(t, ga, queued(sl, newID()), order.Admitted)
		eventuallyStatus(t, gb, sl, 3)
	}
	wantCached(t, gb, sales[0], true)

	victim, err := cl.MasterOf(ctx, redis.ProductSlot(sales[0].ProductID))
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	cl.Kill(victim)
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	promoted, err := cl.WaitFailover(fctx, redis.ProductSlot(sales[0].ProductID), victim)
	if err != nil {
		t.Fatalf("%v\n%s", err, cl.Logs(20))
	}
	t.Logf("failover: %s took over from %s after %v", promoted.Addr(), victim.Addr(), time.Since(killed).Round(time.Millisecond))

	// The new master holds what the old one acknowledged (WAIT): the stock
	// the admission took and its stream entry.
	var admitted order.Admission
	eventuallyDo(t, 15*time.Second, "an admission on the new master", func() error {
		admitted = queued(sales[0], newID())
		d, _, err := ga.Admit(ctx, admitted)
		switch {
		case errors.Is(err, order.ErrNotReplicated) && d == order.Admitted:
			return nil
		case err != nil:
			return err
		}
		return fmt.Errorf("Admit = %v, want Admitted with ErrNotReplicated (the new master has no replica)", d)
	})
	// Admitted on the master, and unconfirmed: the retry names the order,
	// still unconfirmed; B's cache follows the new master.
	d, held, err := ga.Admit(ctx, queued(sales[0], admitted.Order.UserID))
	if d != order.DeniedAlreadyAdmitted || held != admitted.Order.ID || !errors.Is(err, order.ErrNotReplicated) {
		t.Fatalf("retry on the new master = %v, %v, %v", d, held, err)
	}
	eventuallyStatus(t, gb, sales[0], 2)
	// A worker does not take the unconfirmed entries; it does take the
	// other masters' (each has its replica).
	got, err := qa.Read(ctx, "w1", 100, 0, time.Hour)
	if !errors.Is(err, redis.ErrUnconfirmed) {
		t.Fatalf("Read error = %v, want ErrUnconfirmed", err)
	}
	for _, e := range got {
		if e.ProductID == sales[0].ProductID {
			t.Errorf("Read handed out %v of the product without a replica", e.ID)
		}
	}
	if len(got) != 2 {
		t.Errorf("Read = %d entries, want the 2 of the other products", len(got))
	}
	settleAll(t, ga, got, order.Committed)

	// The other products were never disturbed.
	for _, sl := range sales[1:] {
		mustAdmit(t, ga, queued(sl, newID()), order.Admitted)
		eventuallyStatus(t, gb, sl, 2)
	}

	// The old master comes back as a replica of the new one: the retry is
	// now confirmed, and the worker gets the entries.
	if err := cl.Restart(victim); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitHealthy(fctx); err != nil {
		t.Fatalf("%v\n%s", err, cl.Logs(20))
	}
	mustHold(t, ga, sales[0], admitted.Order.UserID, order.DeniedAlreadyAdmitted, admitted.Order.ID)
	var left []order.QueuedOrder
	eventuallyDo(t, 10*time.Second, "the unconfirmed entries", func() error {
		got, err := qa.Read(ctx, "w1", 100, 0, time.Hour)
		left = append(left, got...)
		if err != nil {
			return err
		}
		for _, e := range left {
			if e.ID == admitted.Order.ID {
				return nil
			}
		}
		return fmt.Errorf("read %d entries, not %v yet", len(left), admitted.Order.ID)
	})
	settleAll(t, ga, left, order.Committed)

	// The watcher reported the moved slot, and no other product's.
	eventuallyDo(t, 5*time.Second, "the watcher's report", func() error {
		movedMu.Lock()
		defer movedMu.Unlock()
		found := false
		for _, m := range moved {
			found = found || m.Product(sales[0].ProductID)
			for _, sl := range sales[1:] {
				if m.Product(sl.ProductID) {
					return fmt.Errorf("product %s reported moved; its master never changed", sl.ProductID)
				}
			}
		}
		if !found {
			return fmt.Errorf("%d reports, none with the failed-over product", len(moved))
		}
		return nil
	})
}

func wantStatus(t testing.TB, g *redis.Gate, sl sale.Sale, want int32) {
	t.Helper()
	st, loaded, err := g.Status(t.Context(), sl, time.Now())
	if err != nil || !loaded || st.Remaining != want {
		t.Fatalf("Status = %+v, %v, %v, want %d left", st, loaded, err, want)
	}
}

func wantCached(t testing.TB, g *redis.Gate, sl sale.Sale, want bool) {
	t.Helper()
	st, _, err := g.Status(t.Context(), sl, time.Now())
	if err != nil || st.CacheHit != want {
		t.Fatalf("Status cache hit = %v (%v), want %v", st.CacheHit, err, want)
	}
}

// eventuallyStatus waits until g reads want left, from its cache.
func eventuallyStatus(t testing.TB, g *redis.Gate, sl sale.Sale, want int32) {
	t.Helper()
	eventuallyDo(t, 5*time.Second, fmt.Sprintf("status %d of %s", want, sl.ProductID), func() error {
		st, loaded, err := g.Status(t.Context(), sl, time.Now())
		if err != nil || !loaded || st.Remaining != want {
			return fmt.Errorf("status %+v, %v, %v", st, loaded, err)
		}
		return nil
	})
	// Read again: a value served from memory must be the same.
	wantStatus(t, g, sl, want)
}

func eventuallyDo(t testing.TB, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %v", what, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
