package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
	"github.com/flashsale/flashsale/internal/redis"
	"github.com/flashsale/flashsale/internal/testenv"
)

// Shape of the fleet test.
const (
	fleetServes  = 3
	fleetWorkers = 2
	fleetBuyers  = 1800
	fleetStock   = 400 // per product; three products, so 1,200 units for 1,800 buyers
	fleetLoad    = 30 * time.Second
	// fleetSecondGo is the share of buyers who try again after their
	// first answer (a winner's retry must be told ALREADY_ORDERED).
	fleetSecondGo = 0.15
	// fleetRejoin is how long a killed master stays down after its replica
	// took over, before a supervisor would have restarted it.
	fleetRejoin = time.Second
)

// TestFleet is issue 11's fleet: PostgreSQL, a private six-node Redis
// Cluster (three masters, three replicas, appendonly), three `flashsale
// serve` in queue mode with no workers of their own, and two `flashsale
// worker`. Three products with sales open now, whose slots three different
// masters serve. 1,800 buyers arrive evenly over 30 s, round-robin over the
// servers (REST and gRPC in turn), each retrying on 503 or a connection
// error at the next server; some try a second time after their answer. A
// third of the way in, the master serving one product's slot is killed -9
// (its replica takes over; the old master is restarted a second later and
// rejoins as a replica); half way, another serve is restarted with SIGTERM
// (a rolling deploy); two thirds in, one serve is killed -9 for good.
// Afterwards TestChaos's checker runs over every answer: every ack (200,
// 202, ALREADY_ORDERED's order id) is in PostgreSQL, nothing oversold, sold
// + remaining = stock, no buyer twice, no 5xx but 503, a winner's retry is
// never told SOLD_OUT.
//
// FLEET_KILLS=n (the failover drill) kills the master of a product's slot
// n times instead of once, cycling through the products, each time waiting
// for the failover and for the old master to rejoin, with the load
// stretched to fit; it reports each failover's pause. FLEET_MIN_REPLICAS
// sets the servers' ORDERS_QUEUE_MIN_REPLICAS (default auto: 1).
func TestFleet(t *testing.T) {
	testenv.Long(t, "runs a Redis Cluster, PostgreSQL, 3 serve and 2 workers for about a minute")
	kills := 1
	if v := os.Getenv("FLEET_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("FLEET_KILLS=%q: want a whole number, 1 or more", v)
		}
		kills = n
	}
	load, buyers, stock := fleetLoad, fleetBuyers, fleetStock
	if kills > 1 {
		// Each failover takes about 4 s and the rejoin 2 s more. The drill
		// keeps 100 buyers a second coming and never sells out, so every
		// failover has orders to acknowledge on both sides of it.
		load = max(load, time.Duration(kills)*8*time.Second)
		buyers = int(load/time.Second) * 100
		stock = buyers/3 + 100
	}
	env := map[string]string{
		"RECONCILE_INTERVAL_SECONDS": "10",
		"ORDERS_CLAIM_IDLE_SECONDS":  "2",
	}
	if v := os.Getenv("FLEET_MIN_REPLICAS"); v != "" {
		env["ORDERS_QUEUE_MIN_REPLICAS"] = v
	}
	bin := buildFlashsale(t)
	p := &chaosPhase{
		t: t, seed: 1, mode: "queue", load: load, bin: bin, onCluster: true,
		serveCount: fleetServes, workerCount: fleetWorkers, userCount: buyers, env: env,
	}
	p.kinds = map[string]int{}
	p.setUp()
	products := p.fleetSales(stock)
	rng := rand.New(rand.NewPCG(1, 11))
	steps := p.fleetBuyers(rng, products)

	if d := time.Until(p.start); d > 0 {
		time.Sleep(d)
	}
	ctx, stopFaults := context.WithCancel(t.Context())
	var faultsDone sync.WaitGroup
	var pauses []failoverPause
	faultsDone.Go(func() { pauses = p.fleetFaults(ctx, products, kills) })
	faultsDone.Go(func() {
		if sleepUntil(ctx, p.start.Add(p.load/2)) {
			p.rollServe(1)
		}
	})
	deadline := p.start.Add(p.load + chaosRetryGrace)
	var buying sync.WaitGroup
	for i, own := range steps {
		brng := rand.New(rand.NewPCG(1, uint64(i)+100))
		buying.Go(func() { p.buy(own, brng, deadline) })
	}
	buying.Wait()
	stopFaults()
	faultsDone.Wait()

	p.settle()
	p.checkOrders(rng)
	db := p.readDB()
	h := chaosHistory{Seed: p.seed, Mode: "fleet", Start: p.start, Calls: p.calls, Sales: map[string]chaosSale{}, Stock: p.stock}
	for _, s := range p.sales {
		h.Sales[s.ID] = s
	}
	checks := checkChaos(h, db)
	p.report(checks, db)
	p.reportPauses(pauses)
}

// fleetSales creates, as the admin, products with stock units until three
// of them live in slots served by three different masters (the server
// picks the ids), and a sale open now for each of those three.
func (p *chaosPhase) fleetSales(stock int) []string {
	t := p.t
	ctx := bearer(t.Context(), p.admin)
	pc := flashsalev1.NewProductServiceClient(p.conns[0])
	sc := flashsalev1.NewFlashSaleServiceClient(p.conns[0])
	shards, err := p.cluster.Shards(t.Context())
	if err != nil {
		t.Fatalf("HARNESS: slot map: %v", err)
	}
	masterOf := func(id string) string {
		slot := redis.ProductSlot(uuid.MustParse(id))
		for _, s := range shards {
			if s.From <= slot && slot <= s.To {
				return s.Master
			}
		}
		return ""
	}
	byMaster := map[string]string{}
	var products []string
	for i := 0; len(products) < 3; i++ {
		if i == 100 {
			t.Fatalf("HARNESS: 100 products and still not one on each of 3 masters: %v", byMaster)
		}
		r, err := pc.CreateProduct(ctx, &flashsalev1.CreateProductRequest{
			Name: fmt.Sprintf("fleet %d", i), PriceMinor: 100, Currency: "EUR", Quantity: int32(stock),
		})
		if err != nil {
			t.Fatalf("HARNESS: create product: %v", err)
		}
		id := r.GetProduct().GetId()
		if m := masterOf(id); m != "" && byMaster[m] == "" {
			byMaster[m] = id
			products = append(products, id)
		}
	}
	p.stock = map[string]int{}
	p.start = time.Now().Add(time.Second).Truncate(time.Millisecond)
	for _, id := range products {
		p.stock[id] = stock
		w := [2]time.Time{p.start.Add(-2 * time.Second), p.start.Add(time.Hour)}
		r, err := sc.CreateFlashSale(ctx, &flashsalev1.CreateFlashSaleRequest{
			ProductId: id, StartsAt: timestamppb.New(w[0]), EndsAt: timestamppb.New(w[1]),
		})
		if err != nil {
			t.Fatalf("HARNESS: create sale: %v", err)
		}
		p.sales = append(p.sales, chaosSale{ID: r.GetFlashSale().GetId(), Product: id, Starts: w[0], Ends: w[1],
			Role: "fleet, on master " + masterOf(id)})
	}
	return products
}

// fleetBuyers spreads the buyers evenly over the load: buyer i at i/n of
// it, at product i mod 3 and serve i mod 3, over REST or gRPC in turn; a
// share of them go again a few seconds after. The steps are dealt to 96
// goroutines, so a buyer retrying through a failover holds up few others.
func (p *chaosPhase) fleetBuyers(rng *rand.Rand, products []string) [][]chaosStep {
	const goroutines = 96
	steps := make([][]chaosStep, goroutines)
	span := 0.9 * float64(p.load)
	for i := range len(p.users) {
		at := time.Duration(float64(i) / float64(len(p.users)) * span)
		s := chaosStep{at: at, user: i, product: products[i%len(products)], pass: 1,
			transport: []string{"rest", "grpc"}[i/len(products)%2], serve: i % len(p.serves)}
		g := i % goroutines
		steps[g] = append(steps[g], s)
		if rng.Float64() < fleetSecondGo {
			again := s
			again.pass, again.at = 2, min(at+time.Duration(2+rng.IntN(5))*time.Second, p.load)
			again.serve = (s.serve + 1) % len(p.serves)
			steps[g] = append(steps[g], again)
		}
	}
	for _, s := range steps {
		slices.SortStableFunc(s, func(a, b chaosStep) int { return int(a.at - b.at) })
	}
	return steps
}

// failoverPause is one master kill: when, which product's master, how long
// the cluster took to promote the replica, and how long the product went
// without an acknowledged order.
type failoverPause struct {
	product        string
	killed         time.Time
	promotedAfter  time.Duration
	rejoinedAfter  time.Duration // old master back and in sync, as a replica
	lastAckBefore  time.Time
	firstAckAfter  time.Time
	harnessFailure string
}

// fleetFaults kills the master of a product's slot `kills` times, spread
// over the first 85% of the load (once: at a third), then one serve at two
// thirds. It returns what each master kill took.
func (p *chaosPhase) fleetFaults(ctx context.Context, products []string, kills int) []failoverPause {
	var pauses []failoverPause
	serveKill := p.start.Add(p.load * 2 / 3)
	for i := range kills {
		at := p.start.Add(p.load / 3)
		if kills > 1 {
			at = p.start.Add(time.Duration(float64(p.load) * (0.05 + 0.8*float64(i)/float64(kills))))
		}
		if kills > 1 || i == 0 {
			if !sleepUntil(ctx, at) {
				return pauses
			}
		}
		pauses = append(pauses, p.killMaster(ctx, products[i%len(products)]))
		if time.Now().After(serveKill) && p.serves[len(p.serves)-1].cur != nil {
			p.killServe()
		}
	}
	if sleepUntil(ctx, serveKill) && p.serves[len(p.serves)-1].cur != nil {
		p.killServe()
	}
	return pauses
}

func sleepUntil(ctx context.Context, at time.Time) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(time.Until(at)):
		return true
	}
}

// rollServe restarts serve i as a rolling deploy would: SIGTERM (health
// NOT_SERVING, calls in flight drained), then start it again. The buyers
// that hit it meanwhile retry at the next serve.
func (p *chaosPhase) rollServe(i int) {
	s := p.serves[i]
	stopped := time.Now()
	s.cur.stop()
	drained := time.Since(stopped)
	if p.restart(s, "after SIGTERM") {
		p.note("SIGTERM serve", stopped, "SIGTERM %s (stopped after %v), started again, ready at %s",
			s.name, drained.Round(time.Millisecond), p.since(time.Now()))
	}
}

// killServe kills the last serve with -9, for good: the buyers' retries go
// to the others.
func (p *chaosPhase) killServe() {
	s := p.serves[len(p.serves)-1]
	killed := time.Now()
	s.kill()
	p.note("kill -9 serve", killed, "kill -9 %s, not restarted", s.name)
}

// killMaster kills the master serving product's slot, waits for its
// replica to take over, then restarts it after fleetRejoin and waits until
// every master has a replica in sync again.
func (p *chaosPhase) killMaster(ctx context.Context, product string) failoverPause {
	slot := redis.ProductSlot(uuid.MustParse(product))
	fp := failoverPause{product: product}
	victim, err := p.cluster.MasterOf(ctx, slot)
	if err != nil {
		fp.harnessFailure = fmt.Sprintf("no master for product %s: %v", product, err)
		p.harnessFailure("%s", fp.harnessFailure)
		return fp
	}
	fp.killed = time.Now()
	p.cluster.Kill(victim)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	promoted, err := p.cluster.WaitFailover(wctx, slot, victim)
	if err != nil {
		fp.harnessFailure = fmt.Sprintf("kill -9 master %s: %v", victim.Addr(), err)
		p.harnessFailure("%s", fp.harnessFailure)
		return fp
	}
	fp.promotedAfter = time.Since(fp.killed)
	time.Sleep(fleetRejoin)
	if err := p.cluster.Restart(victim); err != nil {
		fp.harnessFailure = err.Error()
		p.harnessFailure("%s", fp.harnessFailure)
		return fp
	}
	if err := p.cluster.WaitHealthy(wctx); err != nil {
		fp.harnessFailure = fmt.Sprintf("cluster not healthy after %s rejoined: %v", victim.Addr(), err)
		p.harnessFailure("%s", fp.harnessFailure)
		return fp
	}
	fp.rejoinedAfter = time.Since(fp.killed)
	p.note("kill -9 redis master", fp.killed, "kill -9 master %s of product %s; %s took over after %v; old master back in sync (a replica) after %v",
		victim.Addr(), product, promoted.Addr(), fp.promotedAfter.Round(time.Millisecond), fp.rejoinedAfter.Round(time.Millisecond))
	return fp
}

// reportPauses logs, for each master kill, the promotion time and the
// product's pause: from its last acknowledged order before the kill to
// its first after (503s, mostly ORDER_NOT_REPLICATED, in between).
func (p *chaosPhase) reportPauses(pauses []failoverPause) {
	var b strings.Builder
	var gaps []time.Duration
	fmt.Fprintf(&b, "failovers: %d master kills\n", len(pauses))
	for i, fp := range pauses {
		if fp.harnessFailure != "" {
			fmt.Fprintf(&b, "  %2d: %s\n", i+1, fp.harnessFailure)
			continue
		}
		var before, after time.Time
		notReplicated := 0
		for _, c := range p.calls {
			if c.RPC != "PlaceOrder" || c.Product != fp.product {
				continue
			}
			if c.Reason == "ORDER_NOT_REPLICATED" && !c.End.Before(fp.killed) && c.Start.Before(fp.killed.Add(fp.rejoinedAfter)) {
				notReplicated++
			}
			if c.Code != codes.OK || c.Status != "PENDING" {
				continue
			}
			if c.End.Before(fp.killed) && c.End.After(before) {
				before = c.End
			}
			if c.Start.After(fp.killed) && (after.IsZero() || c.End.Before(after)) {
				after = c.End
			}
		}
		gap := "no 202 after"
		if !after.IsZero() && !before.IsZero() {
			gaps = append(gaps, after.Sub(before))
			gap = fmt.Sprintf("no 202 for %v (last before the kill %v earlier; first after it %v later)",
				after.Sub(before).Round(time.Millisecond), fp.killed.Sub(before).Round(time.Millisecond), after.Sub(fp.killed).Round(time.Millisecond))
		}
		fmt.Fprintf(&b, "  %2d: %s: replica promoted after %v, old master back in sync after %v; %s; %d ORDER_NOT_REPLICATED meanwhile\n",
			i+1, p.since(fp.killed), fp.promotedAfter.Round(time.Millisecond), fp.rejoinedAfter.Round(time.Millisecond), gap, notReplicated)
	}
	if len(gaps) > 0 {
		slices.Sort(gaps)
		fmt.Fprintf(&b, "  pause without a 202 on the product: min %v, median %v, max %v",
			gaps[0].Round(time.Millisecond), gaps[len(gaps)/2].Round(time.Millisecond), gaps[len(gaps)-1].Round(time.Millisecond))
	}
	p.t.Log(b.String())
}
