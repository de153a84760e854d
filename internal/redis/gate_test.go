package redis_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/redis"
	"github.com/flashsale/flashsale/internal/sale"
)

// TestGateAdmitRace: 1,000 distinct users at once on 100 units; exactly 100 win.
func TestGateAdmitRace(t *testing.T) {
	t.Parallel()
	g := redis.NewGate(newClient(t))
	sl := openSale()
	mustLoad(t, g, sl, 100, nil)

	const n = 1000
	start := make(chan struct{})
	decisions := make([]order.Decision, n)
	attempts := make([]order.Admission, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		attempts[i] = attempt(sl, newID())
		wg.Go(func() {
			<-start
			decisions[i], errs[i] = g.Admit(context.Background(), attempts[i])
		})
	}
	close(start)
	wg.Wait()

	admitted := map[uuid.UUID]bool{}
	soldOut := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Admit: %v", errs[i])
		}
		switch decisions[i] {
		case order.Admitted:
			admitted[attempts[i].Order.UserID] = true
		case order.DeniedSoldOut:
			soldOut++
		default:
			t.Errorf("Admit = %v, want Admitted or DeniedSoldOut", decisions[i])
		}
	}
	if got, want := len(admitted), 100; got != want {
		t.Errorf("distinct admitted users = %d, want %d", got, want)
	}
	if got, want := soldOut, 900; got != want {
		t.Errorf("sold out = %d, want %d", got, want)
	}
	if got, want := remaining(t, g, sl.ID), int32(0); got != want {
		t.Errorf("Remaining = %d, want %d", got, want)
	}
}

// TestGateAdmitSameUser: one user 100 times at once wins once.
func TestGateAdmitSameUser(t *testing.T) {
	t.Parallel()
	g := redis.NewGate(newClient(t))
	sl := openSale()
	mustLoad(t, g, sl, 100, nil)
	user := newID()

	const n = 100
	start := make(chan struct{})
	decisions := make([]order.Decision, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		a := attempt(sl, user)
		wg.Go(func() {
			<-start
			decisions[i], errs[i] = g.Admit(context.Background(), a)
		})
	}
	close(start)
	wg.Wait()

	admitted, already := 0, 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Admit: %v", errs[i])
		}
		switch decisions[i] {
		case order.Admitted:
			admitted++
		case order.DeniedAlreadyAdmitted:
			already++
		default:
			t.Errorf("Admit = %v, want Admitted or DeniedAlreadyAdmitted", decisions[i])
		}
	}
	if admitted != 1 {
		t.Errorf("admitted = %d, want 1", admitted)
	}
	if already != n-1 {
		t.Errorf("already admitted = %d, want %d", already, n-1)
	}
	if got, want := remaining(t, g, sl.ID), int32(99); got != want {
		t.Errorf("Remaining = %d, want %d", got, want)
	}
}

// TestGateWindow: the gate judges [starts, ends) by Redis's clock.
func TestGateWindow(t *testing.T) {
	t.Parallel()
	g := redis.NewGate(newClient(t))
	now := time.Now()
	tests := []struct {
		name         string
		starts, ends time.Time
		want         order.Decision
	}{
		{"before start", now.Add(time.Hour), now.Add(2 * time.Hour), order.DeniedNotOpen},
		{"at end", now.Add(-time.Hour), now, order.DeniedNotOpen},
		{"after end", now.Add(-2 * time.Hour), now.Add(-time.Hour), order.DeniedNotOpen},
		{"open", now.Add(-time.Hour), now.Add(time.Hour), order.Admitted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sl := sale.Sale{ID: newID(), ProductID: newID(), StartsAt: tt.starts, EndsAt: tt.ends}
			mustLoad(t, g, sl, 10, nil)
			mustAdmit(t, g, attempt(sl, newID()), tt.want)
		})
	}
}

func TestGateNotLoaded(t *testing.T) {
	t.Parallel()
	g := redis.NewGate(newClient(t))
	sl := openSale()
	mustAdmit(t, g, attempt(sl, newID()), order.DeniedNotLoaded)
	if _, loaded, err := g.Remaining(t.Context(), sl.ID); err != nil || loaded {
		t.Errorf("Remaining loaded = %v, %v, want false, nil", loaded, err)
	}
	if _, loaded, err := g.Status(t.Context(), sl.ID, time.Now()); err != nil || loaded {
		t.Errorf("Status loaded = %v, %v, want false, nil", loaded, err)
	}
}

// TestGateLoadKeepsState: Load does not overwrite what the gate holds.
func TestGateLoadKeepsState(t *testing.T) {
	t.Parallel()
	g := redis.NewGate(newClient(t))
	sl := openSale()
	buyer := newID()
	mustLoad(t, g, sl, 5, map[uuid.UUID]uuid.UUID{buyer: newID()})
	mustAdmit(t, g, attempt(sl, buyer), order.DeniedAlreadyAdmitted)
	mustAdmit(t, g, attempt(sl, newID()), order.Admitted)
	mustLoad(t, g, sl, 5, nil)
	if got, want := remaining(t, g, sl.ID), int32(4); got != want {
		t.Errorf("Remaining after second Load = %d, want %d", got, want)
	}
	mustAdmit(t, g, attempt(sl, buyer), order.DeniedAlreadyAdmitted)
}

func TestGateQueueMode(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	g, q := redis.NewGate(c), redis.NewQueue(c)
	sl := openSale()
	mustLoad(t, g, sl, 10, nil)

	var want []order.Order
	for range 3 {
		a := attempt(sl, newID())
		a.Queue, a.MaxQueued = true, 3
		mustAdmit(t, g, a, order.Admitted)
		want = append(want, a.Order)
	}
	if n, err := q.Backlog(t.Context(), sl.ID); err != nil || n != 3 {
		t.Errorf("Backlog = %d, %v, want 3, nil", n, err)
	}
	busy := attempt(sl, newID())
	busy.Queue, busy.MaxQueued = true, 3
	mustAdmit(t, g, busy, order.DeniedBusy)
	if got, want := remaining(t, g, sl.ID), int32(7); got != want {
		t.Errorf("Remaining = %d, want %d (BUSY takes no unit)", got, want)
	}

	got, err := q.Read(t.Context(), "w1", 10, 0, time.Hour)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("Read = %d orders, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Order != want[i] {
			t.Errorf("Read[%d] = %+v, want %+v", i, got[i].Order, want[i])
		}
	}
	// Once acknowledged, the backlog drops and a queued attempt is admitted again.
	if err := q.Ack(t.Context(), got); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	if n, err := q.Backlog(t.Context(), sl.ID); err != nil || n != 0 {
		t.Errorf("Backlog after Ack = %d, %v, want 0, nil", n, err)
	}
	mustAdmit(t, g, busy, order.Admitted)
}

func TestGateRelease(t *testing.T) {
	t.Parallel()
	g := redis.NewGate(newClient(t))
	sl := openSale()
	mustLoad(t, g, sl, 1, nil)
	a := attempt(sl, newID())
	mustAdmit(t, g, a, order.Admitted)
	mustAdmit(t, g, attempt(sl, newID()), order.DeniedSoldOut)

	// Without forget: the unit returns, the user stays admitted.
	if err := g.Release(t.Context(), a.Order, false); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if got, want := remaining(t, g, sl.ID), int32(1); got != want {
		t.Errorf("Remaining after Release = %d, want %d", got, want)
	}
	mustAdmit(t, g, attempt(sl, a.Order.UserID), order.DeniedAlreadyAdmitted)

	// Releasing the same order again (a replay) gives nothing more back.
	if err := g.Release(t.Context(), a.Order, true); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if got, want := remaining(t, g, sl.ID), int32(1); got != want {
		t.Errorf("Remaining after a second Release = %d, want %d", got, want)
	}
	mustAdmit(t, g, attempt(sl, a.Order.UserID), order.DeniedAlreadyAdmitted)

	// Forget with another order's id gives its unit back but leaves the
	// user's admission alone.
	b := attempt(sl, newID())
	mustAdmit(t, g, b, order.Admitted) // stock 0
	other := b.Order
	other.ID = newID()
	if err := g.Release(t.Context(), other, true); err != nil {
		t.Fatalf("Release: %v", err)
	}
	mustAdmit(t, g, attempt(sl, b.Order.UserID), order.DeniedAlreadyAdmitted)

	// Forget with the admitted order: the user may try again.
	c := attempt(sl, newID())
	mustAdmit(t, g, c, order.Admitted)
	if err := g.Release(t.Context(), c.Order, true); err != nil {
		t.Fatalf("Release: %v", err)
	}
	mustAdmit(t, g, attempt(sl, c.Order.UserID), order.Admitted)

	// Not loaded: nothing to give back, no error.
	if err := g.Release(t.Context(), attempt(openSale(), newID()).Order, true); err != nil {
		t.Errorf("Release of an unloaded sale: %v", err)
	}
}

// TestGateReconcile: after this test's keys vanish, Reconcile restores the
// state; it keeps the stream of queued orders.
func TestGateReconcile(t *testing.T) {
	t.Parallel()
	prefix := newPrefix()
	c := newClientPrefix(t, prefix)
	g, q := redis.NewGate(c), redis.NewQueue(c)
	sl := openSale()
	mustLoad(t, g, sl, 10, nil)
	buyer := newID()
	a := attempt(sl, buyer)
	a.Queue, a.MaxQueued = true, 100
	mustAdmit(t, g, a, order.Admitted)

	// Reconcile keeps the stream.
	st := order.GateState{Sale: sl, Remaining: 9, Buyers: map[uuid.UUID]uuid.UUID{buyer: a.Order.ID}}
	if err := g.Reconcile(t.Context(), st); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if n, err := q.Backlog(t.Context(), sl.ID); err != nil || n != 1 {
		t.Errorf("Backlog after Reconcile = %d, %v, want 1, nil", n, err)
	}

	deletePrefix(t, prefix)
	mustAdmit(t, g, attempt(sl, newID()), order.DeniedNotLoaded)

	st.Remaining = 3
	if err := g.Reconcile(t.Context(), st); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if got, want := remaining(t, g, sl.ID), int32(3); got != want {
		t.Errorf("Remaining = %d, want %d", got, want)
	}
	mustAdmit(t, g, attempt(sl, buyer), order.DeniedAlreadyAdmitted)
	mustAdmit(t, g, attempt(sl, newID()), order.Admitted)

	// Reconcile replaces a held state, unlike Load.
	st.Remaining = 7
	if err := g.Reconcile(t.Context(), st); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if got, want := remaining(t, g, sl.ID), int32(7); got != want {
		t.Errorf("Remaining = %d, want %d", got, want)
	}
}

// TestGateStatusCache: a status read twice is served from memory the second
// time; selling out rewrites the key, Redis pushes the invalidation and the
// next read fetches the new value.
func TestGateStatusCache(t *testing.T) {
	t.Parallel()
	g := redis.NewGate(newClient(t))
	sl := openSale()
	mustLoad(t, g, sl, 1, nil)

	st := mustStatus(t, g, sl.ID)
	if st.State != sale.StateActive || st.Remaining != 1 {
		t.Errorf("Status = %v %d, want ACTIVE 1", st.State, st.Remaining)
	}
	st = mustStatus(t, g, sl.ID)
	if !st.CacheHit {
		t.Errorf("second Status CacheHit = false, want true")
	}

	mustAdmit(t, g, attempt(sl, newID()), order.Admitted)
	st = pollStatus(t, g, sl.ID, func(st redis.Status) bool { return st.Remaining == 0 })
	if st.CacheHit {
		t.Errorf("first Status after the invalidation CacheHit = true, want false")
	}
	if st.State != sale.StateSoldOut {
		t.Errorf("Status.State = %v, want SOLD_OUT", st.State)
	}
	st = mustStatus(t, g, sl.ID)
	if !st.CacheHit || st.Remaining != 0 {
		t.Errorf("Status = hit %v remaining %d, want hit true remaining 0", st.CacheHit, st.Remaining)
	}
}

// TestGateStatusCoarse: the status key changes only when the stock crosses a
// publish step (1% of the initial stock).
func TestGateStatusCoarse(t *testing.T) {
	t.Parallel()
	prefix := newPrefix()
	g := redis.NewGate(newClientPrefix(t, prefix))
	sl := openSale()
	mustLoad(t, g, sl, 1000, nil) // step 10
	for range 5 {
		mustAdmit(t, g, attempt(sl, newID()), order.Admitted)
	}
	// A fresh client reads the key itself, not a cached copy.
	fresh := redis.NewGate(newClientPrefix(t, prefix))
	if got, want := mustStatus(t, fresh, sl.ID).Remaining, int32(1000); got != want {
		t.Errorf("Status.Remaining at 995 = %d, want %d", got, want)
	}
	for range 5 {
		mustAdmit(t, g, attempt(sl, newID()), order.Admitted)
	}
	st := pollStatus(t, fresh, sl.ID, func(st redis.Status) bool { return st.Remaining != 1000 })
	if got, want := st.Remaining, int32(990); got != want {
		t.Errorf("Status.Remaining at 990 = %d, want %d", got, want)
	}
	mustAdmit(t, g, attempt(sl, newID()), order.Admitted)
	if got, want := remaining(t, g, sl.ID), int32(989); got != want {
		t.Errorf("Remaining = %d, want %d", got, want)
	}
}

func mustStatus(t testing.TB, g *redis.Gate, saleID uuid.UUID) redis.Status {
	t.Helper()
	st, loaded, err := g.Status(t.Context(), saleID, time.Now())
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if !loaded {
		t.Fatalf("Status: not loaded")
	}
	return st
}

// pollStatus reads the status until done accepts it; the invalidation push
// arrives asynchronously.
func pollStatus(t testing.TB, g *redis.Gate, saleID uuid.UUID, done func(redis.Status) bool) redis.Status {
	t.Helper()
	for range 5000 {
		st := mustStatus(t, g, saleID)
		if done(st) {
			return st
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("status never changed")
	return redis.Status{}
}

// TestGateReconcileKeepsQueued: orders still queued count against the stock
// and keep their users admitted across a reconcile from PostgreSQL's state,
// but an order PostgreSQL already holds is not counted twice.
func TestGateReconcileKeepsQueued(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	g := redis.NewGate(c)
	sl := openSale()
	mustLoad(t, g, sl, 10, nil)
	var queued []order.Admission
	for range 3 {
		a := attempt(sl, newID())
		a.Queue, a.MaxQueued = true, 100
		mustAdmit(t, g, a, order.Admitted)
		queued = append(queued, a)
	}
	// PostgreSQL has written the first queued order (stock 9, one buyer); the
	// other two are still only in the stream.
	written := queued[0].Order
	st := order.GateState{Sale: sl, Remaining: 9, Buyers: map[uuid.UUID]uuid.UUID{written.UserID: written.ID}}
	if err := g.Reconcile(t.Context(), st); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if got, want := remaining(t, g, sl.ID), int32(7); got != want {
		t.Errorf("Remaining = %d, want %d (9 in PostgreSQL minus 2 queued)", got, want)
	}
	for _, a := range queued {
		again := attempt(sl, a.Order.UserID)
		again.Queue, again.MaxQueued = true, 100
		mustAdmit(t, g, again, order.DeniedAlreadyAdmitted)
	}
}
