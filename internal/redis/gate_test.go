package redis_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/redis"
	"github.com/flashsale/flashsale/internal/sale"
)

func modeName(queue bool) string {
	if queue {
		return "queue"
	}
	return "sync"
}

// admitAll puts every attempt to the gate at once, one goroutine each,
// released together.
func admitAll(t testing.TB, g *redis.Gate, attempts []order.Admission) (decisions []order.Decision, held []uuid.UUID) {
	t.Helper()
	n := len(attempts)
	start := make(chan struct{})
	decisions, held = make([]order.Decision, n), make([]uuid.UUID, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			decisions[i], held[i], errs[i] = g.Admit(context.Background(), attempts[i])
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("Admit: %v", err)
		}
	}
	return decisions, held
}

// TestGateAdmitRace: 1,000 distinct users at once on 100 units; exactly 100 win.
func TestGateAdmitRace(t *testing.T) {
	t.Parallel()
	for _, queue := range []bool{false, true} {
		t.Run(modeName(queue), func(t *testing.T) {
			t.Parallel()
			g := redis.NewGate(newClient(t))
			sl := openSale()
			mustLoad(t, g, sl, 100, nil)

			const n = 1000
			attempts := make([]order.Admission, n)
			for i := range attempts {
				attempts[i] = attempt(sl, newID())
				attempts[i].Queue, attempts[i].MaxQueued = queue, n
			}
			decisions, _ := admitAll(t, g, attempts)

			admitted := map[uuid.UUID]bool{}
			soldOut := 0
			for i, d := range decisions {
				switch d {
				case order.Admitted:
					admitted[attempts[i].Order.UserID] = true
				case order.DeniedSoldOut:
					soldOut++
				default:
					t.Errorf("Admit = %v, want Admitted or DeniedSoldOut", d)
				}
			}
			if got, want := len(admitted), 100; got != want {
				t.Errorf("distinct admitted users = %d, want %d", got, want)
			}
			if got, want := soldOut, 900; got != want {
				t.Errorf("sold out = %d, want %d", got, want)
			}
			wantRemaining(t, g, sl.ProductID, 0, "")
		})
	}
}

// TestGateAdmitRaceTwoSales: two sales of one product share its units;
// 1,000 users at once, half in each sale, on 100 units: exactly 100 win
// across both.
func TestGateAdmitRaceTwoSales(t *testing.T) {
	t.Parallel()
	g := redis.NewGate(newClient(t))
	s1 := openSale()
	s2 := saleOf(s1.ProductID)
	mustLoadState(t, g, order.ProductState{
		ProductID: s1.ProductID, Quantity: 100,
		Sales: []order.SaleBuyers{{Sale: s1}, {Sale: s2}},
	})

	const n = 1000
	attempts := make([]order.Admission, n)
	for i := range attempts {
		sl := s1
		if i%2 == 1 {
			sl = s2
		}
		attempts[i] = attempt(sl, newID())
		attempts[i].Queue, attempts[i].MaxQueued = i%4 < 2, n // both modes in both sales
	}
	decisions, _ := admitAll(t, g, attempts)

	admitted, soldOut := 0, 0
	for _, d := range decisions {
		switch d {
		case order.Admitted:
			admitted++
		case order.DeniedSoldOut:
			soldOut++
		default:
			t.Errorf("Admit = %v, want Admitted or DeniedSoldOut", d)
		}
	}
	if admitted != 100 || soldOut != n-100 {
		t.Errorf("admitted, sold out = %d, %d, want 100, %d", admitted, soldOut, n-100)
	}
	wantRemaining(t, g, s1.ProductID, 0, "")
}

// TestGateAdmitSameUser: one user 100 times at once wins once; the others
// are told the order the user holds: in progress in sync mode, admitted in
// queue mode.
func TestGateAdmitSameUser(t *testing.T) {
	t.Parallel()
	for _, queue := range []bool{false, true} {
		t.Run(modeName(queue), func(t *testing.T) {
			t.Parallel()
			g := redis.NewGate(newClient(t))
			sl := openSale()
			mustLoad(t, g, sl, 100, nil)
			user := newID()
			denied := order.DeniedInProgress
			if queue {
				denied = order.DeniedAlreadyAdmitted
			}

			const n = 100
			attempts := make([]order.Admission, n)
			for i := range attempts {
				attempts[i] = attempt(sl, user)
				attempts[i].Queue, attempts[i].MaxQueued = queue, n
			}
			decisions, held := admitAll(t, g, attempts)

			var winner uuid.UUID
			admitted := 0
			for i, d := range decisions {
				if d == order.Admitted {
					admitted++
					winner = attempts[i].Order.ID
				}
			}
			if admitted != 1 {
				t.Fatalf("admitted = %d, want 1", admitted)
			}
			for i, d := range decisions {
				if d == order.Admitted {
					continue
				}
				if d != denied || held[i] != winner {
					t.Errorf("Admit = %v holding %v, want %v holding %v", d, held[i], denied, winner)
				}
			}
			wantRemaining(t, g, sl.ProductID, 99, "")
		})
	}
}

// TestGateWindow: the gate judges [starts, ends) by Redis's clock. Each
// window is set against Redis's TIME read just before the attempt, never the
// host's clock, which may disagree with Redis's by any amount. A sale that
// starts at that instant is open by the time the attempt runs (the start
// belongs to the window, to the microsecond); one that ends at it is closed
// (the end does not).
func TestGateWindow(t *testing.T) {
	t.Parallel()
	g := redis.NewGate(newClient(t))
	rc := rawClient(t)
	tests := []struct {
		name         string
		starts, ends time.Duration // from Redis's clock when the case runs
		want         order.Decision
	}{
		{"an hour before start", time.Hour, 2 * time.Hour, order.DeniedNotOpen},
		{"a minute before start", time.Minute, time.Hour, order.DeniedNotOpen},
		{"at start", 0, time.Hour, order.Admitted},
		{"open", -time.Hour, time.Hour, order.Admitted},
		{"a minute before end", -time.Hour, time.Minute, order.Admitted},
		{"at end", -time.Hour, 0, order.DeniedNotOpen},
		{"after end", -2 * time.Hour, -time.Hour, order.DeniedNotOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := redisTime(t, rc)
			sl := sale.Sale{ID: newID(), ProductID: newID(), StartsAt: now.Add(tt.starts), EndsAt: now.Add(tt.ends)}
			mustLoad(t, g, sl, 10, nil)
			mustAdmit(t, g, attempt(sl, newID()), tt.want)
		})
	}
}

// redisTime is Redis's clock (TIME), to the microsecond.
func redisTime(t *testing.T, rc rueidis.Client) time.Time {
	t.Helper()
	v, err := rc.Do(t.Context(), rc.B().Time().Build()).AsIntSlice()
	if err != nil || len(v) != 2 {
		t.Fatalf("TIME = %v, %v", v, err)
	}
	return time.Unix(v[0], v[1]*int64(time.Microsecond))
}

// TestGateNotLoaded: without the product's state, or the sale's, the gate
// admits nothing and takes no unit.
func TestGateNotLoaded(t *testing.T) {
	t.Parallel()
	g := redis.NewGate(newClient(t))
	sl := openSale()
	mustAdmit(t, g, attempt(sl, newID()), order.DeniedNotLoaded)
	mustAdmit(t, g, queued(sl, newID()), order.DeniedNotLoaded)
	if _, loaded, err := g.Remaining(t.Context(), sl.ProductID); err != nil || loaded {
		t.Errorf("Remaining loaded = %v, %v, want false, nil", loaded, err)
	}
	if _, loaded, err := g.Status(t.Context(), sl, time.Now()); err != nil || loaded {
		t.Errorf("Status loaded = %v, %v, want false, nil", loaded, err)
	}
	if _, _, found, err := g.Holder(t.Context(), sl, newID()); err != nil || found {
		t.Errorf("Holder found = %v, %v, want false, nil", found, err)
	}
	if _, ok, err := g.Pending(t.Context(), sl, newID()); err != nil || ok {
		t.Errorf("Pending ok = %v, %v, want false, nil", ok, err)
	}

	// The product is loaded with one sale; another sale of it is not.
	mustLoad(t, g, sl, 10, nil)
	other := saleOf(sl.ProductID)
	mustAdmit(t, g, attempt(other, newID()), order.DeniedNotLoaded)
	wantRemaining(t, g, sl.ProductID, 10, "after an attempt in an unloaded sale")
}

// TestGateLoadKeepsState: Load does not overwrite what the gate holds.
func TestGateLoadKeepsState(t *testing.T) {
	t.Parallel()
	g := redis.NewGate(newClient(t))
	sl := openSale()
	buyer, held := newID(), newID()
	mustLoad(t, g, sl, 5, map[uuid.UUID]uuid.UUID{buyer: held})
	mustHold(t, g, sl, buyer, order.DeniedAlreadyAdmitted, held)
	mustAdmit(t, g, attempt(sl, newID()), order.Admitted)
	mustLoad(t, g, sl, 5, nil)
	wantRemaining(t, g, sl.ProductID, 4, "after a second Load")
	mustHold(t, g, sl, buyer, order.DeniedAlreadyAdmitted, held)
	// No sales listed: the product is loaded, so nothing happens either.
	mustLoadState(t, g, order.ProductState{ProductID: sl.ProductID, Quantity: 50})
	wantRemaining(t, g, sl.ProductID, 4, "after a Load without sales")
}

// TestGateLoadNewSale: a Load listing a sale the gate does not hold applies
// the whole state: the new sale's buyers, the product's stock from
// PostgreSQL's less the orders in flight, the loaded sale's buyers kept.
func TestGateLoadNewSale(t *testing.T) {
	t.Parallel()
	g := redis.NewGate(newClient(t))
	s1 := openSale()
	s2 := saleOf(s1.ProductID)
	mustLoad(t, g, s1, 10, nil)
	a1 := attempt(s1, newID())
	a2 := queued(s1, newID())
	mustAdmit(t, g, a1, order.Admitted)
	mustAdmit(t, g, a2, order.Admitted)
	wantRemaining(t, g, s1.ProductID, 8, "after two admissions")

	// PostgreSQL: s2 has a buyer (one unit taken); a1 and a2 are not written yet.
	u3, o3 := newID(), newID()
	st := order.ProductState{
		ProductID: s1.ProductID, Quantity: 9,
		Sales: []order.SaleBuyers{{Sale: s1}, {Sale: s2, Buyers: map[uuid.UUID]uuid.UUID{u3: o3}}},
	}
	mustLoadState(t, g, st)
	wantRemaining(t, g, s1.ProductID, 7, "after loading a new sale (9 in PostgreSQL, 2 in flight)")
	mustHold(t, g, s1, a1.Order.UserID, order.DeniedInProgress, a1.Order.ID)
	mustHold(t, g, s1, a2.Order.UserID, order.DeniedAlreadyAdmitted, a2.Order.ID)
	mustHold(t, g, s2, u3, order.DeniedAlreadyAdmitted, o3)
	mustAdmit(t, g, attempt(s2, a1.Order.UserID), order.Admitted) // a buyer of s1 may buy in s2
	wantRemaining(t, g, s1.ProductID, 6, "after an admission in the new sale")

	// Everything is loaded now: the same Load does nothing.
	mustLoadState(t, g, st)
	wantRemaining(t, g, s1.ProductID, 6, "after loading again")
}

// TestGateSharedStock: every sale of a product admits from the product's
// units; each sale has its own buyers.
func TestGateSharedStock(t *testing.T) {
	t.Parallel()
	g := redis.NewGate(newClient(t))
	s1 := openSale()
	s2 := saleOf(s1.ProductID)
	mustLoadState(t, g, order.ProductState{
		ProductID: s1.ProductID, Quantity: 3,
		Sales: []order.SaleBuyers{{Sale: s1}, {Sale: s2}},
	})
	u1 := newID()
	mustAdmit(t, g, attempt(s1, u1), order.Admitted)
	wantRemaining(t, g, s1.ProductID, 2, "after an admission in s1")
	mustAdmit(t, g, queued(s2, u1), order.Admitted) // the same user, the other sale
	b := attempt(s2, newID())
	mustAdmit(t, g, b, order.Admitted)
	wantRemaining(t, g, s1.ProductID, 0, "after three admissions in two sales")
	mustAdmit(t, g, attempt(s1, newID()), order.DeniedSoldOut)
	mustAdmit(t, g, queued(s2, newID()), order.DeniedSoldOut)

	// A unit given back in s2 can be taken in s1.
	mustSettle(t, g, settlement(b.Order, order.Dropped))
	wantRemaining(t, g, s1.ProductID, 1, "after a drop in s2")
	mustAdmit(t, g, attempt(s1, newID()), order.Admitted)
	mustAdmit(t, g, attempt(s2, newID()), order.DeniedSoldOut)
}

// TestGateHeldOrder: a second attempt is told which order the user holds:
// in progress while a sync-mode order is being written, admitted once it
// is committed, queued or in PostgreSQL.
func TestGateHeldOrder(t *testing.T) {
	t.Parallel()
	g := redis.NewGate(newClient(t))
	sl := openSale()
	stored, storedOrder := newID(), newID()
	mustLoad(t, g, sl, 10, map[uuid.UUID]uuid.UUID{stored: storedOrder})
	mustHold(t, g, sl, stored, order.DeniedAlreadyAdmitted, storedOrder)

	a := attempt(sl, newID())
	mustAdmit(t, g, a, order.Admitted)
	mustHold(t, g, sl, a.Order.UserID, order.DeniedInProgress, a.Order.ID)
	again := queued(sl, a.Order.UserID) // the mode of the next attempt does not matter
	if got := mustAdmit(t, g, again, order.DeniedInProgress); got != a.Order.ID {
		t.Errorf("queued attempt held = %v, want %v", got, a.Order.ID)
	}
	mustSettle(t, g, settlement(a.Order, order.Committed))
	mustHold(t, g, sl, a.Order.UserID, order.DeniedAlreadyAdmitted, a.Order.ID)

	q := queued(sl, newID())
	mustAdmit(t, g, q, order.Admitted)
	mustHold(t, g, sl, q.Order.UserID, order.DeniedAlreadyAdmitted, q.Order.ID)
	wantRemaining(t, g, sl.ProductID, 8, "")
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
	if n, err := q.Backlog(t.Context(), sl.ProductID); err != nil || n != 3 {
		t.Errorf("Backlog = %d, %v, want 3, nil", n, err)
	}
	busy := attempt(sl, newID())
	busy.Queue, busy.MaxQueued = true, 3
	mustAdmit(t, g, busy, order.DeniedBusy)
	wantRemaining(t, g, sl.ProductID, 7, "(BUSY takes no unit)")
	// BUSY is about the stream: a sync-mode attempt is admitted.
	mustAdmit(t, g, attempt(sl, newID()), order.Admitted)

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
	// Once settled, the backlog drops and a queued attempt is admitted again.
	var ss []order.Settlement
	for _, e := range got {
		ss = append(ss, order.Settlement{Order: e.Order, Ref: e.Ref, Outcome: order.Committed})
	}
	mustSettle(t, g, ss...)
	if n, err := q.Backlog(t.Context(), sl.ProductID); err != nil || n != 0 {
		t.Errorf("Backlog after Settle = %d, %v, want 0, nil", n, err)
	}
	mustAdmit(t, g, busy, order.Admitted)
}

// TestGateSettle: what each outcome does to the stock, the buyer and the
// rejected record, in both modes, and that settling again changes nothing.
func TestGateSettle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		outcome    order.Outcome
		name       string
		unitBack   bool
		keepsBuyer bool
		rejected   bool
	}{
		{order.Committed, "committed", false, true, false},
		{order.RejectedSoldOut, "sold out", false, false, true},
		{order.RejectedDuplicate, "duplicate", true, true, true},
		{order.Dropped, "dropped", true, false, true},
	}
	for _, tt := range tests {
		for _, queue := range []bool{false, true} {
			t.Run(tt.name+"/"+modeName(queue), func(t *testing.T) {
				t.Parallel()
				prefix := newPrefix()
				c := newClientPrefix(t, prefix)
				g, q := redis.NewGate(c), redis.NewQueue(c)
				rc := rawClient(t)
				sl := openSale()
				mustLoad(t, g, sl, 2, nil)
				a := attempt(sl, newID())
				a.Queue, a.MaxQueued = queue, 10
				mustAdmit(t, g, a, order.Admitted)
				user := a.Order.UserID

				s := settlement(a.Order, tt.outcome)
				if queue {
					got, err := q.Read(t.Context(), "w1", 10, 0, time.Hour)
					if err != nil || len(got) != 1 || got[0].Order != a.Order {
						t.Fatalf("Read = %+v, %v, want the admitted order", got, err)
					}
					s.Ref = got[0].Ref
				} else if !inflight(t, rc, prefix, a.Order) {
					t.Fatalf("admitted sync-mode order not recorded in flight")
				}
				mustSettle(t, g, s)

				wantLeft := int32(1)
				if tt.unitBack {
					wantLeft = 2
				}
				check := func(when string) {
					t.Helper()
					wantRemaining(t, g, sl.ProductID, wantLeft, when)
					if inflight(t, rc, prefix, a.Order) {
						t.Errorf("%s: still recorded in flight", when)
					}
					if n, err := q.Backlog(t.Context(), sl.ProductID); err != nil || n != 0 {
						t.Errorf("%s: Backlog = %d, %v, want 0, nil", when, n, err)
					}
					if n := pendingEntries(t, rc, prefix, sl.ProductID); n != 0 {
						t.Errorf("%s: %d entries pending in the group, want 0", when, n)
					}
					buyer, isBuyer := hget(t, rc, saleKey(prefix, sl, "buyers"), user.String())
					if isBuyer != tt.keepsBuyer || (isBuyer && buyer != a.Order.ID.String()) {
						t.Errorf("%s: buyer = %q (%v), want the order: %v", when, buyer, isBuyer, tt.keepsBuyer)
					}
					rej, isRejected := hget(t, rc, saleKey(prefix, sl, "rejected"), user.String())
					if isRejected != tt.rejected || (isRejected && rej != a.Order.ID.String()) {
						t.Errorf("%s: rejected = %q (%v), want the order: %v", when, rej, isRejected, tt.rejected)
					}
					// (A duplicate's user holds another order in PostgreSQL,
					// where Check looks first.)
					if tt.outcome != order.RejectedDuplicate {
						o, ok, err := g.Pending(t.Context(), sl, user)
						wantStatus := order.StatusPending
						if !tt.keepsBuyer {
							wantStatus = order.StatusRejected
						}
						if err != nil || !ok || o.ID != a.Order.ID || o.Status != wantStatus {
							t.Errorf("%s: Pending = %v %v %v, %v, want %v %v true, nil", when, o.ID, o.Status, ok, err, a.Order.ID, wantStatus)
						}
					}
				}
				check("after Settle")

				// Settling again, by a worker that took the entry over or
				// after a lost reply, with any outcome, changes nothing.
				for _, again := range []order.Outcome{tt.outcome, order.Committed, order.RejectedSoldOut, order.RejectedDuplicate, order.Dropped} {
					s.Outcome = again
					mustSettle(t, g, s)
				}
				check("after settling again")

				if tt.keepsBuyer {
					mustHold(t, g, sl, user, order.DeniedAlreadyAdmitted, a.Order.ID)
				} else {
					mustAdmit(t, g, attempt(sl, user), order.Admitted) // the user may retry
				}
			})
		}
	}
}

// TestGateSettleNotInFlight: settling an order the gate does not hold in
// flight changes nothing, loaded or not.
func TestGateSettleNotInFlight(t *testing.T) {
	t.Parallel()
	prefix := newPrefix()
	g := redis.NewGate(newClientPrefix(t, prefix))
	rc := rawClient(t)
	sl := openSale()
	mustLoad(t, g, sl, 5, nil)
	stranger := attempt(sl, newID()).Order
	for _, outcome := range []order.Outcome{order.Committed, order.RejectedSoldOut, order.RejectedDuplicate, order.Dropped} {
		mustSettle(t, g,
			settlement(stranger, outcome),
			order.Settlement{Order: stranger, Ref: "1-1", Outcome: outcome})
	}
	wantRemaining(t, g, sl.ProductID, 5, "after settling an order not in flight")
	if err := g.Settle(t.Context(), []order.Settlement{{Order: stranger}}); err == nil {
		t.Errorf("Settle without an outcome = nil, want an error")
	}
	if _, ok, err := g.Pending(t.Context(), sl, stranger.UserID); err != nil || ok {
		t.Errorf("Pending = %v, %v, want false, nil", ok, err)
	}

	// Not loaded: nothing to give back, no error, and no state made up.
	other := attempt(openSale(), newID()).Order
	mustSettle(t, g, settlement(other, order.Dropped))
	if _, loaded, err := g.Remaining(t.Context(), other.ProductID); err != nil || loaded {
		t.Errorf("Remaining of an unloaded product after Settle: loaded %v, %v, want false, nil", loaded, err)
	}
	if n := countKeys(t, rc, productKey(prefix, other.ProductID, "*")); n != 0 {
		t.Errorf("%d keys of the unloaded product after Settle, want none", n)
	}
}

// TestGateSettleAfterExpiry: a worker settles a queued order after its
// product's state expired (its stream outlives it): no unit comes back,
// and no stock key without an expiry is left behind.
func TestGateSettleAfterExpiry(t *testing.T) {
	t.Parallel()
	prefix := newPrefix()
	c := newClientPrefix(t, prefix)
	g, q := redis.NewGate(c), redis.NewQueue(c)
	rc := rawClient(t)
	sl := openSale()
	mustLoad(t, g, sl, 5, nil)
	a := queued(sl, newID())
	mustAdmit(t, g, a, order.Admitted)
	got, err := q.Read(t.Context(), "w1", 10, 0, time.Hour)
	if err != nil || len(got) != 1 {
		t.Fatalf("Read = %d, %v, want 1, nil", len(got), err)
	}
	// Every key of the product but the stream expires.
	for _, k := range []string{
		productKey(prefix, sl.ProductID, "meta"), productKey(prefix, sl.ProductID, "stock"),
		productKey(prefix, sl.ProductID, "status"), saleKey(prefix, sl, "meta"),
		saleKey(prefix, sl, "buyers"), saleKey(prefix, sl, "rejected"),
	} {
		del(t, rc, k)
	}
	mustSettle(t, g, order.Settlement{Order: a.Order, Ref: got[0].Ref, Outcome: order.Dropped})
	if n, err := q.Backlog(t.Context(), sl.ProductID); err != nil || n != 0 {
		t.Errorf("Backlog = %d, %v, want 0, nil", n, err)
	}
	if n, loaded, err := g.Remaining(t.Context(), sl.ProductID); err != nil || loaded {
		t.Errorf("Remaining after settling into an expired product = %d loaded %v, %v, want not loaded", n, loaded, err)
	}
	for _, k := range []string{productKey(prefix, sl.ProductID, "stock"), saleKey(prefix, sl, "rejected")} {
		if ttl := pttl(t, rc, k); ttl == -1 {
			t.Errorf("%s left without an expiry", k)
		}
	}
}

// TestGateKeysExpire: every key of a product and its sale but the stream
// expires (the package doc: a sale's keys 24 hours after the sale ends, the
// product's with its last loaded sale's), whichever script created it.
func TestGateKeysExpire(t *testing.T) {
	t.Parallel()
	prefix := newPrefix()
	c := newClientPrefix(t, prefix)
	g, q := redis.NewGate(c), redis.NewQueue(c)
	rc := rawClient(t)
	sl := openSale()
	mustLoad(t, g, sl, 10, nil) // no buyers, nothing in flight yet
	a, b := attempt(sl, newID()), queued(sl, newID())
	mustAdmit(t, g, a, order.Admitted) // stays in flight
	mustAdmit(t, g, b, order.Admitted)
	got, err := q.Read(t.Context(), "w1", 10, 0, time.Hour)
	if err != nil || len(got) != 1 {
		t.Fatalf("Read = %d, %v, want 1, nil", len(got), err)
	}
	settleAll(t, g, got, order.Dropped)
	for _, k := range []string{
		productKey(prefix, sl.ProductID, "meta"), productKey(prefix, sl.ProductID, "stock"),
		productKey(prefix, sl.ProductID, "status"), productKey(prefix, sl.ProductID, "inflight"),
		saleKey(prefix, sl, "meta"), saleKey(prefix, sl, "buyers"), saleKey(prefix, sl, "rejected"),
	} {
		switch ttl := pttl(t, rc, k); {
		case ttl == -2:
			t.Errorf("%s missing", k)
		case ttl == -1:
			t.Errorf("%s has no expiry", k)
		}
	}
}

// TestGateSettleOtherOrderKeepsBuyer: rejecting an order of a user who holds
// another one (the gate lost track of it and admitted them again) leaves
// the user's admission alone.
func TestGateSettleOtherOrderKeepsBuyer(t *testing.T) {
	t.Parallel()
	for _, outcome := range []order.Outcome{order.RejectedSoldOut, order.RejectedDuplicate, order.Dropped} {
		t.Run(outcomeName(outcome), func(t *testing.T) {
			t.Parallel()
			g := redis.NewGate(newClient(t))
			sl := openSale()
			user, stored := newID(), newID()
			mustLoad(t, g, sl, 9, nil) // lost track of user's order
			a := attempt(sl, user)
			mustAdmit(t, g, a, order.Admitted)
			// PostgreSQL holds user's stored order (quantity 10 - 1); a is in flight.
			if got := mustReconcile(t, g, stateOf(sl, 9, map[uuid.UUID]uuid.UUID{user: stored})); got != 8 {
				t.Errorf("Reconcile = %d, want 8 (9 less a, in flight)", got)
			}
			mustHold(t, g, sl, user, order.DeniedAlreadyAdmitted, stored)
			mustSettle(t, g, settlement(a.Order, outcome))
			mustHold(t, g, sl, user, order.DeniedAlreadyAdmitted, stored)
			want := int32(9)
			if outcome == order.RejectedSoldOut {
				want = 8
			}
			wantRemaining(t, g, sl.ProductID, want, "after Settle")
		})
	}
}

func outcomeName(o order.Outcome) string {
	switch o {
	case order.Committed:
		return "committed"
	case order.RejectedSoldOut:
		return "sold out"
	case order.RejectedDuplicate:
		return "duplicate"
	case order.Dropped:
		return "dropped"
	}
	return "unknown"
}

// TestGateSettleBatch: one Settle call with orders of two products and two
// sales of one, each settled by its own outcome.
func TestGateSettleBatch(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	g, q := redis.NewGate(c), redis.NewQueue(c)
	s1 := openSale()
	s2 := saleOf(s1.ProductID)
	s3 := openSale()
	mustLoadState(t, g, order.ProductState{
		ProductID: s1.ProductID, Quantity: 10,
		Sales: []order.SaleBuyers{{Sale: s1}, {Sale: s2}},
	})
	mustLoad(t, g, s3, 5, nil)
	a1, a2, a3 := attempt(s1, newID()), queued(s2, newID()), attempt(s1, newID())
	b1 := attempt(s3, newID())
	for _, a := range []order.Admission{a1, a2, a3, b1} {
		mustAdmit(t, g, a, order.Admitted)
	}
	got, err := q.Read(t.Context(), "w1", 10, 0, time.Hour)
	if err != nil || len(got) != 1 {
		t.Fatalf("Read = %d, %v, want 1, nil", len(got), err)
	}
	mustSettle(t, g,
		settlement(a1.Order, order.Committed),
		settlement(b1.Order, order.Dropped),
		order.Settlement{Order: a2.Order, Ref: got[0].Ref, Outcome: order.Dropped},
		settlement(a3.Order, order.RejectedSoldOut),
	)
	wantRemaining(t, g, s1.ProductID, 8, "of the first product (10, 3 admitted, 1 dropped)")
	wantRemaining(t, g, s3.ProductID, 5, "of the second product (5, 1 admitted, 1 dropped)")
	mustHold(t, g, s1, a1.Order.UserID, order.DeniedAlreadyAdmitted, a1.Order.ID)
	for _, r := range []struct {
		sl sale.Sale
		a  order.Admission
	}{{s2, a2}, {s1, a3}, {s3, b1}} {
		o, ok, err := g.Pending(t.Context(), r.sl, r.a.Order.UserID)
		if err != nil || !ok || o.ID != r.a.Order.ID || o.Status != order.StatusRejected {
			t.Errorf("Pending = %v %v %v, %v, want %v REJECTED", o.ID, o.Status, ok, err, r.a.Order.ID)
		}
		mustAdmit(t, g, attempt(r.sl, r.a.Order.UserID), order.Admitted)
	}
}

// TestGateReconcile: after this test's keys vanish, Reconcile restores the
// state; it keeps the stream of queued orders, and replaces a held state.
func TestGateReconcile(t *testing.T) {
	t.Parallel()
	prefix := newPrefix()
	c := newClientPrefix(t, prefix)
	g, q := redis.NewGate(c), redis.NewQueue(c)
	sl := openSale()
	mustLoad(t, g, sl, 10, nil)
	buyer := newID()
	a := queued(sl, buyer)
	mustAdmit(t, g, a, order.Admitted)

	// a is committed in PostgreSQL (9 left) and still in the stream.
	st := stateOf(sl, 9, map[uuid.UUID]uuid.UUID{buyer: a.Order.ID})
	if got := mustReconcile(t, g, st); got != 9 {
		t.Errorf("Reconcile = %d, want 9", got)
	}
	if n, err := q.Backlog(t.Context(), sl.ProductID); err != nil || n != 1 {
		t.Errorf("Backlog after Reconcile = %d, %v, want 1, nil", n, err)
	}

	deletePrefix(t, prefix)
	mustAdmit(t, g, attempt(sl, newID()), order.DeniedNotLoaded)

	st.Quantity = 3
	if got := mustReconcile(t, g, st); got != 3 {
		t.Errorf("Reconcile = %d, want 3", got)
	}
	mustHold(t, g, sl, buyer, order.DeniedAlreadyAdmitted, a.Order.ID)
	mustAdmit(t, g, attempt(sl, newID()), order.Admitted)

	// Reconcile replaces a held state, unlike Load: stock, buyers, window.
	// The sync-mode order just admitted is in flight and takes a unit.
	st.Quantity = 7
	if got := mustReconcile(t, g, st); got != 6 {
		t.Errorf("Reconcile = %d, want 6 (7 less 1 in flight)", got)
	}
	st.Sales[0].Buyers = nil // the order is gone from PostgreSQL
	st.Sales[0].Sale.StartsAt = time.Now().Add(time.Hour)
	st.Sales[0].Sale.EndsAt = time.Now().Add(2 * time.Hour)
	if got := mustReconcile(t, g, st); got != 6 {
		t.Errorf("Reconcile = %d, want 6", got)
	}
	mustAdmit(t, g, attempt(sl, buyer), order.DeniedNotOpen)
	st.Sales[0].Sale = sl
	mustReconcile(t, g, st)
	mustAdmit(t, g, attempt(sl, buyer), order.Admitted)
}

// TestGateReconcileInFlight: Reconcile, and a Load after the gate lost its
// state, count each order in flight once. An order in flight and not in
// PostgreSQL takes a unit and keeps its user a buyer; one in PostgreSQL
// (committed, whether or not its record in flight is gone yet) is in the
// quantity already; a sync-mode order older than the orphan horizon and not
// in PostgreSQL was abandoned and is dropped. The writer settling the order
// afterwards leaves the count right.
func TestGateReconcileInFlight(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		queue   bool
		inPG    bool // committed: in PostgreSQL's buyers, the quantity one less
		settled bool // committed and settled: its record in flight is gone
		old     bool // created before the orphan horizon
		// want is what the user's next attempt gets; Admitted when the
		// admission was dropped.
		want order.Decision
		// left is the remaining stock after the snapshot, of 10.
		left int32
	}{
		{"queued, not in PostgreSQL", true, false, false, false, order.DeniedAlreadyAdmitted, 9},
		{"queued, committed, entry still there", true, true, false, false, order.DeniedAlreadyAdmitted, 9},
		{"queued, committed and settled", true, true, true, false, order.DeniedAlreadyAdmitted, 9},
		{"queued, old, not in PostgreSQL", true, false, false, true, order.DeniedAlreadyAdmitted, 9},
		{"sync, not in PostgreSQL", false, false, false, false, order.DeniedInProgress, 9},
		{"sync, committed, still in flight", false, true, false, false, order.DeniedAlreadyAdmitted, 9},
		{"sync, committed and settled", false, true, true, false, order.DeniedAlreadyAdmitted, 9},
		{"sync, orphaned", false, false, false, true, order.Admitted, 10},
		{"sync, old but committed", false, true, false, true, order.DeniedAlreadyAdmitted, 9},
	}
	for _, tt := range tests {
		for _, via := range []string{"reconcile", "load"} {
			t.Run(tt.name+"/"+via, func(t *testing.T) {
				t.Parallel()
				prefix := newPrefix()
				c := newClientPrefix(t, prefix)
				g, q := redis.NewGate(c), redis.NewQueue(c)
				rc := rawClient(t)
				sl := openSale()
				mustLoad(t, g, sl, 10, nil)
				a := attempt(sl, newID())
				a.Queue, a.MaxQueued = tt.queue, 10
				if tt.old {
					a.Order.CreatedAt = time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
				}
				mustAdmit(t, g, a, order.Admitted)
				user := a.Order.UserID
				var ref string
				if tt.queue {
					got, err := q.Read(t.Context(), "w1", 10, 0, time.Hour)
					if err != nil || len(got) != 1 {
						t.Fatalf("Read = %d, %v, want 1, nil", len(got), err)
					}
					ref = got[0].Ref
				}
				if tt.settled {
					mustSettle(t, g, order.Settlement{Order: a.Order, Ref: ref, Outcome: order.Committed})
				}

				st := stateOf(sl, 10, nil)
				if tt.inPG {
					st = stateOf(sl, 9, map[uuid.UUID]uuid.UUID{user: a.Order.ID})
				}
				st.OrphanedBefore = time.Now().Add(-time.Minute)
				snapshot := func() {
					t.Helper()
					if via == "reconcile" {
						if got := mustReconcile(t, g, st); got != tt.left {
							t.Errorf("Reconcile = %d, want %d", got, tt.left)
						}
						return
					}
					forgetState(t, rc, prefix, sl)
					mustAdmit(t, g, attempt(sl, newID()), order.DeniedNotLoaded)
					mustLoadState(t, g, st)
					wantRemaining(t, g, sl.ProductID, tt.left, "after Load")
				}
				snapshot()
				buyer, isBuyer := hget(t, rc, saleKey(prefix, sl, "buyers"), user.String())
				if tt.want == order.Admitted {
					if isBuyer {
						t.Errorf("the orphaned order's user is still a buyer (%s)", buyer)
					}
				} else {
					mustHold(t, g, sl, user, tt.want, a.Order.ID)
				}
				if got, want := inflight(t, rc, prefix, a.Order), tt.want == order.DeniedInProgress; got != want {
					t.Errorf("recorded in flight = %v, want %v", got, want)
				}
				// A second snapshot of the same state counts the same.
				snapshot()

				// The writer settles the order with its real outcome.
				outcome := order.Dropped
				if tt.inPG {
					outcome = order.Committed
				}
				mustSettle(t, g, order.Settlement{Order: a.Order, Ref: ref, Outcome: outcome})
				wantLeft := int32(9)
				if !tt.inPG {
					wantLeft = 10 // the unit is back, once
				}
				wantRemaining(t, g, sl.ProductID, wantLeft, "after the writer settled")
				if n, err := q.Backlog(t.Context(), sl.ProductID); err != nil || n != 0 {
					t.Errorf("Backlog = %d, %v, want 0, nil", n, err)
				}
				if tt.inPG {
					mustHold(t, g, sl, user, order.DeniedAlreadyAdmitted, a.Order.ID)
				} else {
					mustAdmit(t, g, attempt(sl, user), order.Admitted)
				}
			})
		}
	}
}

// TestGateReconcileKeepsQueued: orders still in flight count against the
// product's stock and keep their users admitted across a reconcile from
// PostgreSQL's state, across the product's sales and in both modes, but an
// order PostgreSQL already holds is not counted twice.
func TestGateReconcileKeepsQueued(t *testing.T) {
	t.Parallel()
	g := redis.NewGate(newClient(t))
	s1 := openSale()
	s2 := saleOf(s1.ProductID)
	st := order.ProductState{
		ProductID: s1.ProductID, Quantity: 10,
		Sales: []order.SaleBuyers{{Sale: s1}, {Sale: s2}},
	}
	mustLoadState(t, g, st)
	var inFlight []order.Admission
	for i := range 3 {
		inFlight = append(inFlight, queued(s1, newID()), attempt(s2, newID()))
		if i == 0 {
			inFlight = append(inFlight, queued(s2, newID()))
		}
	}
	for _, a := range inFlight {
		mustAdmit(t, g, a, order.Admitted)
	}
	wantRemaining(t, g, s1.ProductID, 3, "after 7 admissions")
	// PostgreSQL has written the first queued order of s1 and the first
	// sync order of s2 (8 left); the other five are still in flight.
	w1, w2 := inFlight[0].Order, inFlight[1].Order
	st.Quantity = 8
	st.Sales[0].Buyers = map[uuid.UUID]uuid.UUID{w1.UserID: w1.ID}
	st.Sales[1].Buyers = map[uuid.UUID]uuid.UUID{w2.UserID: w2.ID}
	if got := mustReconcile(t, g, st); got != 3 {
		t.Errorf("Reconcile = %d, want 3 (8 in PostgreSQL less 5 in flight)", got)
	}
	for _, a := range inFlight {
		want := order.DeniedAlreadyAdmitted
		if !a.Queue && a.Order.ID != w2.ID {
			want = order.DeniedInProgress
		}
		mustHold(t, g, a.Sale, a.Order.UserID, want, a.Order.ID)
	}
}

// TestGatePending: Pending reports the admission, then the rejection; a
// rejection for lack of stock gives no unit back; after a retry Pending
// reports the new admission.
func TestGatePending(t *testing.T) {
	t.Parallel()
	g := redis.NewGate(newClient(t))
	sl := openSale()
	mustLoad(t, g, sl, 10, nil)
	user := newID()

	if _, ok, err := g.Pending(t.Context(), sl, user); err != nil || ok {
		t.Fatalf("Pending before admission = %v, %v, want false, nil", ok, err)
	}
	a := attempt(sl, user)
	mustAdmit(t, g, a, order.Admitted)
	o, ok, err := g.Pending(t.Context(), sl, user)
	if err != nil || !ok {
		t.Fatalf("Pending = %v, %v, want true, nil", ok, err)
	}
	want := a.Order
	want.CreatedAt = o.CreatedAt // from the UUIDv7, checked below
	if o != want {
		t.Errorf("Pending = %+v, want %+v", o, want)
	}
	if d := o.CreatedAt.Sub(a.Order.CreatedAt); d < -time.Second || d > time.Second {
		t.Errorf("Pending.CreatedAt = %v, want about %v", o.CreatedAt, a.Order.CreatedAt)
	}

	mustSettle(t, g, settlement(a.Order, order.RejectedSoldOut))
	o, ok, err = g.Pending(t.Context(), sl, user)
	if err != nil || !ok {
		t.Fatalf("Pending after the rejection = %v, %v, want true, nil", ok, err)
	}
	if o.ID != a.Order.ID || o.Status != order.StatusRejected || o.SaleID != sl.ID || o.ProductID != sl.ProductID {
		t.Errorf("Pending after the rejection = %+v, want %v REJECTED", o, a.Order.ID)
	}
	wantRemaining(t, g, sl.ProductID, 9, "after a sold-out rejection")

	// The user may try again; the new admission is what Pending reports.
	b := attempt(sl, user)
	mustAdmit(t, g, b, order.Admitted)
	o, ok, err = g.Pending(t.Context(), sl, user)
	if err != nil || !ok || o.ID != b.Order.ID || o.Status != order.StatusPending {
		t.Errorf("Pending after retry = %v %v %v, %v, want %v PENDING true, nil", o.ID, o.Status, ok, err, b.Order.ID)
	}
}

// TestGateHolder: Holder reads through client-side caching, and a process
// reading it sees every change another one makes (Redis pushes the
// invalidation): admitted in progress, committed, dropped.
func TestGateHolder(t *testing.T) {
	t.Parallel()
	prefix := newPrefix()
	g := redis.NewGate(newClientPrefix(t, prefix))
	reader := redis.NewGate(newClientPrefix(t, prefix)) // another process
	sl := openSale()
	stored, storedOrder := newID(), newID()
	mustLoad(t, g, sl, 10, map[uuid.UUID]uuid.UUID{stored: storedOrder})

	type holder struct {
		id                uuid.UUID
		inProgress, found bool
	}
	read := func(user uuid.UUID) holder {
		t.Helper()
		id, inProgress, found, err := reader.Holder(t.Context(), sl, user)
		if err != nil {
			t.Fatalf("Holder: %v", err)
		}
		return holder{id, inProgress, found}
	}
	// poll reads until want comes; the invalidation arrives asynchronously.
	poll := func(what string, user uuid.UUID, want holder) {
		t.Helper()
		var got holder
		for range 5000 {
			if got = read(user); got == want {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("Holder %s = %+v, want %+v", what, got, want)
	}

	poll("of a stored buyer", stored, holder{storedOrder, false, true})
	poll("of a stored buyer, again", stored, holder{storedOrder, false, true})

	user := newID()
	poll("before an admission", user, holder{})
	poll("before an admission, again", user, holder{}) // now cached
	a := attempt(sl, user)
	mustAdmit(t, g, a, order.Admitted)
	poll("of a sync order in flight", user, holder{a.Order.ID, true, true})
	poll("of a sync order in flight, again", user, holder{a.Order.ID, true, true})
	mustSettle(t, g, settlement(a.Order, order.Committed))
	poll("after the commit", user, holder{a.Order.ID, false, true})
	poll("after the commit, again", user, holder{a.Order.ID, false, true})

	other := newID()
	b := attempt(sl, other)
	poll("before the second admission", other, holder{})
	mustAdmit(t, g, b, order.Admitted)
	poll("of the second order in flight", other, holder{b.Order.ID, true, true})
	mustSettle(t, g, settlement(b.Order, order.Dropped))
	poll("after the drop", other, holder{})

	q := queued(sl, newID())
	mustAdmit(t, g, q, order.Admitted)
	poll("of a queued order", q.Order.UserID, holder{q.Order.ID, false, true})

	// A reconcile rewrites the buyers: the stored buyer is gone.
	mustReconcile(t, g, stateOf(sl, 10, nil))
	poll("after a reconcile without the buyer", stored, holder{})
}

// TestGateStatusCache: a status read twice is served from memory the second
// time; selling out rewrites the key, Redis pushes the invalidation and the
// next read fetches the new value.
func TestGateStatusCache(t *testing.T) {
	t.Parallel()
	g := redis.NewGate(newClient(t))
	sl := openSale()
	mustLoad(t, g, sl, 1, nil)

	st := mustStatus(t, g, sl)
	if st.State != sale.StateActive || st.Remaining != 1 {
		t.Errorf("Status = %v %d, want ACTIVE 1", st.State, st.Remaining)
	}
	st = mustStatus(t, g, sl)
	if !st.CacheHit {
		t.Errorf("second Status CacheHit = false, want true")
	}

	mustAdmit(t, g, attempt(sl, newID()), order.Admitted)
	st = pollStatus(t, g, sl, func(st redis.Status) bool { return st.Remaining == 0 })
	if st.CacheHit {
		t.Errorf("first Status after the invalidation CacheHit = true, want false")
	}
	if st.State != sale.StateSoldOut {
		t.Errorf("Status.State = %v, want SOLD_OUT", st.State)
	}
	st = mustStatus(t, g, sl)
	if !st.CacheHit || st.Remaining != 0 {
		t.Errorf("Status = hit %v remaining %d, want hit true remaining 0", st.CacheHit, st.Remaining)
	}
}

// TestGateStatusPerProduct: the status is the product's; each sale's state
// comes from its own window.
func TestGateStatusPerProduct(t *testing.T) {
	t.Parallel()
	g := redis.NewGate(newClient(t))
	open := openSale()
	next := saleOf(open.ProductID)
	next.StartsAt, next.EndsAt = time.Now().Add(time.Hour), time.Now().Add(2*time.Hour)
	mustLoadState(t, g, order.ProductState{
		ProductID: open.ProductID, Quantity: 2,
		Sales: []order.SaleBuyers{{Sale: open}, {Sale: next}},
	})
	if st := mustStatus(t, g, open); st.State != sale.StateActive || st.Remaining != 2 {
		t.Errorf("Status of the open sale = %v %d, want ACTIVE 2", st.State, st.Remaining)
	}
	if st := mustStatus(t, g, next); st.State != sale.StateUpcoming || st.Remaining != 2 {
		t.Errorf("Status of the next sale = %v %d, want UPCOMING 2", st.State, st.Remaining)
	}
	for range 2 {
		mustAdmit(t, g, attempt(open, newID()), order.Admitted)
	}
	st := pollStatus(t, g, next, func(st redis.Status) bool { return st.Remaining == 0 })
	if st.State != sale.StateUpcoming {
		t.Errorf("Status of the next sale = %v, want UPCOMING", st.State)
	}
	if st := mustStatus(t, g, open); st.State != sale.StateSoldOut {
		t.Errorf("Status of the open sale = %v, want SOLD_OUT", st.State)
	}
	if st, loaded, err := g.Status(t.Context(), next, next.StartsAt); err != nil || !loaded || st.State != sale.StateSoldOut {
		t.Errorf("Status of the next sale at its start = %v, %v, %v, want SOLD_OUT", st.State, loaded, err)
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
	if got, want := mustStatus(t, fresh, sl).Remaining, int32(1000); got != want {
		t.Errorf("Status.Remaining at 995 = %d, want %d", got, want)
	}
	for range 5 {
		mustAdmit(t, g, attempt(sl, newID()), order.Admitted)
	}
	st := pollStatus(t, fresh, sl, func(st redis.Status) bool { return st.Remaining != 1000 })
	if got, want := st.Remaining, int32(990); got != want {
		t.Errorf("Status.Remaining at 990 = %d, want %d", got, want)
	}
	mustAdmit(t, g, attempt(sl, newID()), order.Admitted)
	wantRemaining(t, g, sl.ProductID, 989, "")
	// A unit given back across the step publishes again.
	last := attempt(sl, newID())
	mustAdmit(t, g, last, order.Admitted) // 988
	mustSettle(t, g, settlement(last.Order, order.Dropped))
	if got := mustStatus(t, fresh, sl).Remaining; got != 990 {
		t.Errorf("Status.Remaining at 989 = %d, want 990", got)
	}
}

func mustStatus(t testing.TB, g *redis.Gate, sl sale.Sale) redis.Status {
	t.Helper()
	st, loaded, err := g.Status(t.Context(), sl, time.Now())
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
func pollStatus(t testing.TB, g *redis.Gate, sl sale.Sale, done func(redis.Status) bool) redis.Status {
	t.Helper()
	for range 5000 {
		st := mustStatus(t, g, sl)
		if done(st) {
			return st
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("status never changed")
	return redis.Status{}
}

// forgetState deletes the product's and the sale's state as if Redis lost
// it, but the records of orders in flight (the stream, the inflight hash).
func forgetState(t testing.TB, rc rueidis.Client, prefix string, sl sale.Sale) {
	t.Helper()
	for _, name := range []string{"meta", "stock", "status"} {
		del(t, rc, productKey(prefix, sl.ProductID, name))
	}
	for _, name := range []string{"meta", "buyers", "rejected"} {
		del(t, rc, saleKey(prefix, sl, name))
	}
}

func del(t testing.TB, rc rueidis.Client, key string) {
	t.Helper()
	if err := rc.Do(t.Context(), rc.B().Del().Key(key).Build()).Error(); err != nil {
		t.Fatalf("DEL %s: %v", key, err)
	}
}

// hget is a field of a hash, and whether it is there.
func hget(t testing.TB, rc rueidis.Client, key, field string) (string, bool) {
	t.Helper()
	v, err := rc.Do(t.Context(), rc.B().Hget().Key(key).Field(field).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return "", false
	}
	if err != nil {
		t.Fatalf("HGET %s %s: %v", key, field, err)
	}
	return v, true
}

// inflight reports whether o is recorded in its product's inflight hash.
func inflight(t testing.TB, rc rueidis.Client, prefix string, o order.Order) bool {
	t.Helper()
	_, ok := hget(t, rc, productKey(prefix, o.ProductID, "inflight"), o.ID.String())
	return ok
}

// pendingEntries is the number of the product's stream entries delivered to
// a worker and not acknowledged.
func pendingEntries(t testing.TB, rc rueidis.Client, prefix string, productID uuid.UUID) int64 {
	t.Helper()
	res, err := rc.Do(t.Context(), rc.B().Xpending().Key(productKey(prefix, productID, "stream")).Group(redis.Group).Build()).ToArray()
	if err != nil {
		if re, ok := rueidis.IsRedisErr(err); ok && len(re.Error()) >= 7 && re.Error()[:7] == "NOGROUP" {
			return 0
		}
		t.Fatalf("XPENDING: %v", err)
	}
	n, err := res[0].AsInt64()
	if err != nil {
		t.Fatalf("XPENDING: %v", err)
	}
	return n
}

func pttl(t testing.TB, rc rueidis.Client, key string) int64 {
	t.Helper()
	n, err := rc.Do(t.Context(), rc.B().Pttl().Key(key).Build()).AsInt64()
	if err != nil {
		t.Fatalf("PTTL %s: %v", key, err)
	}
	return n
}

func countKeys(t testing.TB, rc rueidis.Client, pattern string) int {
	t.Helper()
	return len(scanKeys(t, rc, pattern))
}
