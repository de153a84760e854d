package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/postgres/pgtest"
	"github.com/flashsale/flashsale/internal/redis"
	"github.com/flashsale/flashsale/internal/redis/clustertest"
	"github.com/flashsale/flashsale/internal/testenv"
)

// TestChaos is the randomized history test of the order path: in each order
// mode it runs real processes (two `flashsale serve`, in queue mode two
// `flashsale worker`, a private Redis with an append-only file, a database of
// its own), has concurrent buyers place orders over REST and gRPC for
// several products with several sales each, injects faults from a seeded
// schedule (ReconcileSale calls, SIGKILLed workers and serves, Redis killed
// -9 and restarted from its AOF), records every answer, and then checks the
// history against PostgreSQL (chaos_check_test.go).
//
// CHAOS_SEED picks the schedule (default 1) and CHAOS_DURATION the buyers'
// time across the three modes (default 45s, a third each; set-up, settling
// and the checks add about 8 s per mode). CHAOS_REDIS=cluster runs the fast
// modes on a private six-node Redis Cluster instead of one Redis: a Redis
// fault then kills -9 the master serving a product's slot, waits for its
// replica to take over, and restarts it as a replica (about 15 s more per
// mode). Every failure names the seed;
// `make chaos SEED=... DURATION=...` replays one. Invariant violations are
// reported as "VIOLATION", problems of the harness itself (a process that
// would not come back, say) as "HARNESS".
func TestChaos(t *testing.T) {
	testenv.Long(t, "the chaos test runs real processes for a minute")
	seed, total := chaosParams(t)
	t.Logf("chaos: seed %d, buyers for %v across the modes; replay with CHAOS_SEED=%d CHAOS_DURATION=%v", seed, total, seed, total)
	redisPath, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Missing(t, "redis-server not installed (apt-get install redis-server): %v", err)
	}
	onCluster := os.Getenv("CHAOS_REDIS") == "cluster"
	if onCluster {
		t.Log("chaos: CHAOS_REDIS=cluster: each fast mode runs on a private six-node Redis Cluster; a Redis fault fails a master over")
	}
	runChaos(t, seed, total, redisPath, []string{"direct", "sync", "queue"}, onCluster)
}

// TestChaosCluster is TestChaos's fast modes (sync and queue) on a private
// six-node Redis Cluster, as CHAOS_REDIS=cluster runs them: each Redis
// fault kills the master serving a product's slot, its replica takes over,
// and the old master rejoins as a replica. Each mode gets the buyers' time
// it has in TestChaos, and the same schedule for the same seed.
func TestChaosCluster(t *testing.T) {
	testenv.Long(t, "the chaos test runs real processes and two Redis Clusters for a minute")
	seed, total := chaosParams(t)
	t.Logf("chaos on a Redis Cluster: seed %d; replay with CHAOS_SEED=%d CHAOS_DURATION=%v CHAOS_REDIS=cluster", seed, seed, total)
	redisPath, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Missing(t, "redis-server not installed (apt-get install redis-server): %v", err)
	}
	runChaos(t, seed, total, redisPath, []string{"sync", "queue"}, true)
}

// chaosModes are the order modes in TestChaos's order: a mode's index picks
// its random stream under the seed, whichever modes a run has.
var chaosModes = []string{"direct", "sync", "queue"}

// runChaos runs a phase per mode, each with a third of total, and logs a
// summary of them all.
func runChaos(t *testing.T, seed uint64, total time.Duration, redisPath string, modes []string, onCluster bool) {
	bin := buildFlashsale(t)
	phases := map[string]*chaosPhase{}
	checks := map[string][]chaosCheck{}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			p := &chaosPhase{t: t, seed: seed, stream: uint64(slices.Index(chaosModes, mode)), mode: mode,
				load: total / time.Duration(len(chaosModes)), bin: bin, redisPath: redisPath, onCluster: onCluster}
			phases[mode] = p
			checks[mode] = p.run()
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "chaos summary, seed %d, %v of buyers:", seed, total)
	for _, mode := range modes {
		p := phases[mode]
		if p == nil || len(checks[mode]) == 0 {
			fmt.Fprintf(&b, "\n  %s: did not run to the end", mode)
			continue
		}
		fmt.Fprintf(&b, "\n  %s: PlaceOrder %s\n    faults %s; processes that exited on their own: %d; harness failures: %d",
			mode, formatCounts(chaosOutcomes(p.calls)), formatCounts(p.kinds), len(p.exits), len(p.harness))
		for _, c := range checks[mode] {
			fmt.Fprintf(&b, "\n    %5d  %s", len(c.Violations), c.Name)
		}
	}
	t.Log(b.String())
}

// chaosParams reads CHAOS_SEED and CHAOS_DURATION.
func chaosParams(t *testing.T) (seed uint64, total time.Duration) {
	seed, total = 1, 45*time.Second
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED=%q: %v", v, err)
		}
		seed = n
	}
	if v := os.Getenv("CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 3*time.Second {
			t.Fatalf("CHAOS_DURATION=%q: want a Go duration of 3s or more (%v)", v, err)
		}
		total = d
	}
	return seed, total
}

// Shape of a phase.
const (
	chaosServes     = 2
	chaosWorkers    = 2 // queue mode only
	chaosBuyers     = 32
	chaosCallTime   = 10 * time.Second // a call's deadline; the server bounds its own at 30 s
	chaosRetryGrace = 15 * time.Second // how long after the load a buyer keeps retrying
)

// chaosPhase is one order mode's run: its processes, its schedule, and
// everything recorded.
type chaosPhase struct {
	t         *testing.T
	seed      uint64
	stream    uint64 // the phase's random stream under the seed
	mode      string
	load      time.Duration
	bin       string
	redisPath string
	// onCluster runs the phase on a private six-node Redis Cluster
	// (CHAOS_REDIS=cluster): a Redis fault kills a master, waits for its
	// replica to take over, and restarts it (a replica now).
	onCluster bool
	// serveCount, workerCount and userCount, when set, replace chaosServes,
	// chaosWorkers and the 600 users; env adds to (or overrides) the
	// processes' environment.
	serveCount, workerCount, userCount int
	env                                map[string]string

	db      *pgxpool.Pool
	cluster *clustertest.Cluster // when onCluster, in the fast modes
	redis   *chaosProc           // nil in direct mode
	serves  []*chaosProc
	workers []*chaosProc
	conns   []*grpc.ClientConn // one per serve
	urls    []string           // REST base URL per serve
	rest    *http.Client
	admin   string // the admin's token
	users   []chaosUser
	sales   []chaosSale // in creation order
	stock   map[string]int
	start   time.Time // the buyers' time zero

	mu      sync.Mutex
	calls   []chaosCall
	faults  []string       // what was injected, when, for the report
	kinds   map[string]int // faults by kind
	harness []string       // harness failures: not invariant violations
	exits   []string       // processes that exited without being killed
}

type chaosUser struct{ id, token string }

// chaosProduct is a product and the part its sales play in the schedule.
type chaosProduct struct {
	id    string
	stock int
	shape string // steady, back-to-back, early-reconcile
	busy  time.Duration
}

// run sets the phase up, runs it and checks it; it returns the checks'
// results for the summary.
func (p *chaosPhase) run() []chaosCheck {
	t := p.t
	rng := rand.New(rand.NewPCG(p.seed, p.stream))
	t.Logf("seed %d, mode %s: %v of buyers", p.seed, p.mode, p.load)
	p.kinds = map[string]int{}
	p.setUp()
	products := p.createSales(rng)
	steps := p.drawBuyers(rng, products)
	faults, reconciles := p.drawFaults(rng)

	if d := time.Until(p.start); d > 0 {
		time.Sleep(d)
	}
	ctx, stopFaults := context.WithCancel(t.Context())
	var faultsDone sync.WaitGroup
	faultsDone.Go(func() { p.injectFaults(ctx, faults) })
	faultsDone.Go(func() { p.reconcileSales(ctx, reconciles) })
	deadline := p.start.Add(p.load + chaosRetryGrace)
	var buyers sync.WaitGroup
	for i, own := range steps {
		brng := rand.New(rand.NewPCG(p.seed, p.stream<<32|uint64(i)+1))
		buyers.Go(func() { p.buy(own, brng, deadline) })
	}
	buyers.Wait()
	stopFaults()
	faultsDone.Wait()
	p.reviveAll("after the run")

	p.settle()
	p.checkOrders(rng)
	db := p.readDB()
	h := chaosHistory{Seed: p.seed, Mode: p.mode, Start: p.start, Calls: p.calls, Sales: map[string]chaosSale{}, Stock: p.stock}
	for _, s := range p.sales {
		h.Sales[s.ID] = s
	}
	checks := checkChaos(h, db)
	p.report(checks, db)
	return checks
}

// setUp starts the processes and creates the users.
func (p *chaosPhase) setUp() {
	t := p.t
	dbURL := pgtest.NewDatabase(t)
	p.db = openPool(t, dbURL)
	p.users = p.mintUsers(cmp.Or(p.userCount, 600))

	env := map[string]string{
		"DATABASE_URL":               dbURL,
		"REDIS_URL":                  "redis://127.0.0.1:1/0", // direct mode uses none
		"REDIS_KEY_PREFIX":           "fschaos",
		"AUTH_JWT_SECRET":            testSecret,
		"ADMIN_EMAIL":                testAdminEmail,
		"ADMIN_PASSWORD":             testAdminPassword,
		"ORDER_MODE":                 p.mode,
		"RL_DISABLED":                "true",
		"LOG_LEVEL":                  "warn",
		"RECONCILE_INTERVAL_SECONDS": "1",
		"ORDERS_CLAIM_IDLE_SECONDS":  "1",
		"SHUTDOWN_TIMEOUT_SECONDS":   "2",
		"SHUTDOWN_DRAIN_SECONDS":     "0",
	}
	if p.mode != "direct" && p.onCluster {
		p.cluster = clustertest.Start(t)
		env["REDIS_URL"] = p.cluster.URL()
	} else if p.mode != "direct" {
		port := freePort(t)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		p.redis = &chaosProc{
			name: "redis", path: p.redisPath, env: childEnv(nil),
			args: []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
				"--appendonly", "yes", "--appendfsync", "everysec", "--dir", t.TempDir()},
			ready: func() error { return redisPing(addr) },
		}
		if err := p.redis.start(t); err != nil {
			t.Fatalf("seed %d, mode %s: HARNESS: %v", p.seed, p.mode, err)
		}
		env["REDIS_URL"] = "redis://" + addr + "/0"
	}
	if p.mode == "queue" {
		env["ORDERS_WORKER_CONCURRENCY"] = "0"
	}
	maps.Copy(env, p.env)
	p.rest = &http.Client{Timeout: chaosCallTime, Transport: &http.Transport{MaxIdleConnsPerHost: chaosBuyers}}
	for i := range cmp.Or(p.serveCount, chaosServes) {
		senv := maps.Clone(env)
		senv["HTTP_ADDR"] = "127.0.0.1:" + strconv.Itoa(freePort(t))
		senv["GRPC_ADDR"] = "127.0.0.1:" + strconv.Itoa(freePort(t))
		base := "http://" + senv["HTTP_ADDR"]
		s := &chaosProc{
			name: fmt.Sprintf("serve-%d", i), path: p.bin, args: []string{"serve"}, env: childEnv(senv),
			ready: func() error {
				code, err := getCode(base + "/readyz")
				if err == nil && code != http.StatusOK {
					err = fmt.Errorf("/readyz %d", code)
				}
				return err
			},
		}
		if err := s.start(t); err != nil {
			t.Fatalf("seed %d, mode %s: HARNESS: %v", p.seed, p.mode, err)
		}
		conn, err := grpc.NewClient(senv["GRPC_ADDR"],
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			// A restarted serve is found again within half a second.
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond},
				MinConnectTimeout: 2 * time.Second,
			}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		p.serves, p.conns, p.urls = append(p.serves, s), append(p.conns, conn), append(p.urls, base)
	}
	if p.mode == "queue" {
		wenv := maps.Clone(env)
		wenv["ORDERS_WORKER_CONCURRENCY"] = "1"
		for i := range cmp.Or(p.workerCount, chaosWorkers) {
			// A worker serves nothing to ask; one still running after a
			// moment has connected to Redis and PostgreSQL, so the next
			// fault does not find it starting.
			w := &chaosProc{name: fmt.Sprintf("worker-%d", i), path: p.bin, args: []string{"worker"}, env: childEnv(wenv), minUp: 300 * time.Millisecond}
			if err := w.start(t); err != nil {
				t.Fatalf("seed %d, mode %s: HARNESS: %v", p.seed, p.mode, err)
			}
			p.workers = append(p.workers, w)
		}
	}
	login, err := flashsalev1.NewAuthServiceClient(p.conns[0]).Login(t.Context(), &flashsalev1.LoginRequest{Email: testAdminEmail, Password: testAdminPassword})
	if err != nil {
		t.Fatalf("seed %d, mode %s: HARNESS: admin login: %v", p.seed, p.mode, err)
	}
	p.admin = login.GetAccessToken()
}

// mintUsers inserts n customers straight into the database and signs their
// tokens with the server's secret, as cmd/flashload does: signing up through
// the API hashes a password with argon2id, far too slow for hundreds. They
// exist before any serve starts, which loads them with the rest.
func (p *chaosPhase) mintUsers(n int) []chaosUser {
	t := p.t
	ids := make([]uuid.UUID, n)
	emails := make([]string, n)
	for i := range n {
		ids[i] = uuid.Must(uuid.NewV7())
		emails[i] = fmt.Sprintf("chaos-%d@example.com", i)
	}
	_, err := p.db.Exec(t.Context(), `
		INSERT INTO users (id, email, password_hash, role)
		SELECT id, email, '!chaos', 'customer' FROM unnest($1::uuid[], $2::text[]) AS u(id, email)`, ids, emails)
	if err != nil {
		t.Fatalf("insert users: %v", err)
	}
	tokens := auth.NewTokens([]byte(testSecret), 3*time.Hour, nil)
	users := make([]chaosUser, n)
	for i, id := range ids {
		tok, _, err := tokens.Issue(auth.User{ID: id, Role: auth.RoleCustomer})
		if err != nil {
			t.Fatal(err)
		}
		users[i] = chaosUser{id: id.String(), token: tok}
	}
	return users
}

// createSales creates, as the admin, the phase's products and sales, and
// sets the buyers' time zero just after:
//   - two steady products (one scarce), each with a sale open for the run
//     and one far in the future;
//   - a product with two back-to-back sales: B starts when A ends, during
//     the run;
//   - a product whose second sale is upcoming, reconciled early while the
//     first sells, and opens during the run.
func (p *chaosPhase) createSales(rng *rand.Rand) []chaosProduct {
	t := p.t
	ctx := bearer(t.Context(), p.admin)
	pc := flashsalev1.NewProductServiceClient(p.conns[0])
	sc := flashsalev1.NewFlashSaleServiceClient(p.conns[0])
	products := []chaosProduct{
		{stock: 30 + rng.IntN(121), shape: "steady"},
		{stock: 30 + rng.IntN(21), shape: "steady"},
		{stock: 60 + rng.IntN(91), shape: "back-to-back"},
		{stock: 60 + rng.IntN(91), shape: "early-reconcile"},
	}
	p.stock = map[string]int{}
	for i := range products {
		pr := &products[i]
		r, err := pc.CreateProduct(ctx, &flashsalev1.CreateProductRequest{
			Name: fmt.Sprintf("chaos %s %d", pr.shape, i), PriceMinor: 100, Currency: "EUR", Quantity: int32(pr.stock),
		})
		if err != nil {
			t.Fatalf("seed %d, mode %s: HARNESS: create product: %v", p.seed, p.mode, err)
		}
		pr.id = r.GetProduct().GetId()
		p.stock[pr.id] = pr.stock
	}
	// The sales' windows are set from the start, so it is picked once the
	// products exist, with room for creating the sales.
	p.start = time.Now().Add(time.Second).Truncate(time.Millisecond)
	at := func(f float64) time.Time {
		return p.start.Add(time.Duration(f * float64(p.load))).Truncate(time.Millisecond)
	}
	open, later, never := p.start.Add(-2*time.Second), p.start.Add(time.Hour), p.start.Add(3*time.Hour)
	for i := range products {
		pr := &products[i]
		var windows [][2]time.Time
		var roles []string
		switch pr.shape {
		case "steady":
			pr.busy = time.Duration(rng.Float64() * 0.8 * float64(p.load))
			windows = [][2]time.Time{{open, later}, {never, never.Add(time.Hour)}}
			roles = []string{"open for the run", "far upcoming"}
		case "back-to-back":
			pr.busy = at(0.45).Sub(p.start)
			windows = [][2]time.Time{{open, at(0.45)}, {at(0.45), later}}
			roles = []string{"A, ends at the switch", "B, starts at the switch"}
		case "early-reconcile":
			pr.busy = at(0.55).Sub(p.start)
			windows = [][2]time.Time{{open, at(0.5)}, {at(0.55), later}}
			roles = []string{"C, open until half-time", "D, upcoming, reconciled early, opens at 55%"}
		}
		for j, w := range windows {
			r, err := sc.CreateFlashSale(ctx, &flashsalev1.CreateFlashSaleRequest{
				ProductId: pr.id, StartsAt: timestamppb.New(w[0]), EndsAt: timestamppb.New(w[1]),
			})
			if err != nil {
				t.Fatalf("seed %d, mode %s: HARNESS: create sale %v: %v", p.seed, p.mode, w, err)
			}
			p.sales = append(p.sales, chaosSale{ID: r.GetFlashSale().GetId(), Product: pr.id, Starts: w[0], Ends: w[1], Role: pr.shape + " " + roles[j]})
		}
	}
	if time.Now().After(p.start) {
		t.Logf("seed %d, mode %s: set-up ran %v past the planned start", p.seed, p.mode, time.Since(p.start))
	}
	return products
}

// chaosStep is one go of a user at a product: a PlaceOrder, retried while
// the answer is retryable.
type chaosStep struct {
	at        time.Duration // since the start
	user      int
	product   string
	pass      int
	transport string
	serve     int
}

// drawBuyers picks 2-3 times each product's stock in users and gives each
// of them two goes at it, the second after the first, on one buyer
// goroutine. A steady product's first goes are spread over the run, 30% of
// them bunched around a random moment. A product with two sales sees 20% of
// them in its first sale, 20% bunched around the second's opening and the
// rest after, so that the first sale does not sell everything and the
// second opens into a rush.
func (p *chaosPhase) drawBuyers(rng *rand.Rand, products []chaosProduct) [][]chaosStep {
	steps := make([][]chaosStep, chaosBuyers)
	transport := func() string {
		if rng.IntN(2) == 0 {
			return "rest"
		}
		return "grpc"
	}
	span := 0.9 * float64(p.load)
	for _, pr := range products {
		n := min(len(p.users), pr.stock*(200+rng.IntN(101))/100)
		for _, u := range rng.Perm(len(p.users))[:n] {
			busy := float64(pr.busy)
			var first float64
			switch r := rng.IntN(10); {
			case pr.shape == "steady" && r < 7:
				first = rng.Float64() * span
			case r < 2:
				first = rng.Float64() * busy
			case r < 4 || pr.shape == "steady":
				first = busy + (rng.Float64()*2-1)*float64(time.Second)
			default:
				first = busy + rng.Float64()*(span-busy)
			}
			first = max(0, min(first, span))
			second := first + float64(300*time.Millisecond) + rng.Float64()*0.35*float64(p.load)
			second = min(second, float64(p.load))
			b := rng.IntN(chaosBuyers)
			for pass, at := range []float64{first, second} {
				steps[b] = append(steps[b], chaosStep{
					at: time.Duration(at), user: u, product: pr.id, pass: pass + 1,
					transport: transport(), serve: rng.IntN(len(p.serves)),
				})
			}
		}
	}
	for _, s := range steps {
		slices.SortStableFunc(s, func(a, b chaosStep) int { return cmp.Compare(a.at, b.at) })
	}
	return steps
}

// chaosFault is a process fault of the schedule: kill the target, wait
// down, start it again.
type chaosFault struct {
	at     time.Duration
	kind   string // worker, serve, redis
	target int
	down   time.Duration
}

// chaosReconcile is a ReconcileSale call of the schedule.
type chaosReconcile struct {
	at        time.Duration
	sale      int // index into p.sales
	transport string
	serve     int
}

// drawFaults draws the process faults (SIGKILLed workers every few seconds
// in queue mode, two SIGKILLed serves, one or two Redis kill -9s) inside the
// first 85% of the run, and ReconcileSale calls every 50-200 ms in the fast
// modes, a third of them at the upcoming sale that opens during the run.
func (p *chaosPhase) drawFaults(rng *rand.Rand) ([]chaosFault, []chaosReconcile) {
	within := func(from, to float64) time.Duration {
		return time.Duration((from + rng.Float64()*(to-from)) * float64(p.load))
	}
	var faults []chaosFault
	for i := range 2 {
		faults = append(faults, chaosFault{at: within(0.1+0.4*float64(i), 0.45+0.4*float64(i)), kind: "serve", target: rng.IntN(len(p.serves)), down: time.Duration(rng.IntN(300)) * time.Millisecond})
	}
	if p.redis != nil || p.cluster != nil {
		for range 1 + rng.IntN(2) {
			faults = append(faults, chaosFault{at: within(0.1, 0.85), kind: "redis", down: time.Duration(rng.IntN(500)) * time.Millisecond})
		}
	}
	if len(p.workers) > 0 {
		for at := within(0.05, 0.15); at < time.Duration(0.85*float64(p.load)); at += 1500*time.Millisecond + time.Duration(rng.IntN(2500))*time.Millisecond {
			faults = append(faults, chaosFault{at: at, kind: "worker", target: rng.IntN(len(p.workers)), down: time.Duration(100+rng.IntN(900)) * time.Millisecond})
		}
	}
	slices.SortFunc(faults, func(a, b chaosFault) int { return cmp.Compare(a.at, b.at) })

	var reconciles []chaosReconcile
	if p.mode == "direct" {
		return faults, nil // no gate state to reconcile
	}
	// The upcoming sale is reconciled early only while the product's other
	// sale sells, and any time once it is open itself.
	early := slices.IndexFunc(p.sales, func(s chaosSale) bool { return strings.Contains(s.Role, "reconciled early") })
	other := p.sales[early-1]
	for at := time.Duration(0); at < time.Duration(0.95*float64(p.load)); at += time.Duration(50+rng.IntN(151)) * time.Millisecond {
		sale := rng.IntN(len(p.sales))
		if rng.IntN(3) == 0 {
			sale = early
		}
		if now := p.start.Add(at); sale == early && !now.Before(other.Ends) && now.Before(p.sales[early].Starts) {
			sale = early - 1
		}
		transport := "grpc"
		if rng.IntN(2) == 0 {
			transport = "rest"
		}
		reconciles = append(reconciles, chaosReconcile{at: at, sale: sale, transport: transport, serve: rng.IntN(len(p.serves))})
	}
	return faults, reconciles
}

// buy runs one buyer's steps in order, each at its time or as soon as the
// previous one is done.
func (p *chaosPhase) buy(steps []chaosStep, rng *rand.Rand, deadline time.Time) {
	for _, s := range steps {
		if d := time.Until(p.start.Add(s.at)); d > 0 {
			time.Sleep(d)
		}
		p.place(s, rng, deadline)
	}
}

// place sends one go, retrying (on the other serve, after a short backoff)
// while the answer is "try again": no answer, Unavailable (503), a 5xx, a
// rate limit. Every answer is recorded.
func (p *chaosPhase) place(s chaosStep, rng *rand.Rand, deadline time.Time) {
	serve := s.serve
	wait := 20 * time.Millisecond
	for {
		c := p.placeOnce(s, serve)
		p.record(c)
		if !retryable(c) || time.Now().After(deadline) {
			return
		}
		time.Sleep(wait + time.Duration(rng.Int64N(int64(wait))))
		wait = min(2*wait, 400*time.Millisecond)
		serve = (serve + 1) % len(p.serves)
	}
}

func retryable(c chaosCall) bool {
	switch {
	case c.NoAnswer, c.HTTP >= 500, c.HTTP == http.StatusTooManyRequests:
		return true
	}
	switch c.Code {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.Internal, codes.Unknown, codes.DeadlineExceeded:
		return true
	}
	return false
}

func (p *chaosPhase) placeOnce(s chaosStep, serve int) chaosCall {
	u := p.users[s.user]
	c := chaosCall{RPC: "PlaceOrder", Transport: s.transport, Serve: serve, User: u.id, Product: s.product, Pass: s.pass, Start: time.Now()}
	ctx, cancel := context.WithTimeout(p.t.Context(), chaosCallTime)
	defer cancel()
	if s.transport == "rest" {
		var body struct{ Order *restOrder }
		p.restCall(ctx, &c, "POST", p.urls[serve]+"/v1/products/"+s.product+"/orders", u.token, &body)
		if body.Order != nil {
			c.OrderID, c.Sale, c.Status = body.Order.ID, body.Order.FlashSaleID, strings.TrimPrefix(body.Order.Status, "ORDER_STATUS_")
		}
	} else {
		r, err := flashsalev1.NewOrderServiceClient(p.conns[serve]).PlaceOrder(bearer(ctx, u.token), &flashsalev1.PlaceOrderRequest{ProductId: s.product})
		grpcResult(&c, err)
		if o := r.GetOrder(); o != nil {
			c.OrderID, c.Sale, c.Status = o.GetId(), o.GetFlashSaleId(), strings.TrimPrefix(o.GetStatus().String(), "ORDER_STATUS_")
		}
	}
	c.End = time.Now()
	return c
}

// restOrder is an order in a REST body (protojson names).
type restOrder struct {
	ID          string `json:"id"`
	FlashSaleID string `json:"flashSaleId"`
	Status      string `json:"status"`
}

// restCall sends a REST call and records its answer in c; a 2xx body is
// decoded into ok.
func (p *chaosPhase) restCall(ctx context.Context, c *chaosCall, method, url, token string, ok any) {
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader("{}")
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		p.t.Errorf("HARNESS: %v", err)
		return
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.rest.Do(req)
	if err != nil {
		c.NoAnswer, c.Code, c.Message = true, codes.Unavailable, err.Error()
		return
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.NoAnswer, c.Code, c.Message = true, codes.Unavailable, "reading the body: "+err.Error()
		return
	}
	c.HTTP = resp.StatusCode
	if resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(raw, ok); err != nil {
			c.Code, c.Message = codes.Unknown, fmt.Sprintf("2xx body is not the expected JSON: %v: %.200q", err, raw)
		}
		return
	}
	// grpc-gateway's error body: {code, message, details}.
	var e struct {
		Code    codes.Code `json:"code"`
		Message string     `json:"message"`
		Details []struct {
			Type     string            `json:"@type"`
			Reason   string            `json:"reason"`
			Metadata map[string]string `json:"metadata"`
		} `json:"details"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		c.Code, c.Message = codes.Unknown, fmt.Sprintf("error body is not JSON: %.200q", raw)
		return
	}
	c.Code, c.Message = e.Code, e.Message
	for _, d := range e.Details {
		if d.Type == "type.googleapis.com/google.rpc.ErrorInfo" {
			c.Reason, c.OrderID = d.Reason, d.Metadata["order_id"]
		}
	}
}

// grpcResult records a gRPC error in c. The server's Unavailable always
// carries RetryInfo, so one without details was made by the client: the
// call got no answer.
func grpcResult(c *chaosCall, err error) {
	if err == nil {
		return
	}
	st := status.Convert(err)
	c.Code, c.Message = st.Code(), st.Message()
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			c.Reason, c.OrderID = info.GetReason(), info.GetMetadata()["order_id"]
		}
	}
	switch st.Code() {
	case codes.Unavailable:
		c.NoAnswer = len(st.Details()) == 0
	case codes.DeadlineExceeded, codes.Canceled:
		c.NoAnswer = true // our own deadline: the server's is 30 s
	}
}

func (p *chaosPhase) record(c chaosCall) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, c)
}

// since is t as an offset into the run, for the report.
func (p *chaosPhase) since(t time.Time) string {
	return fmt.Sprintf("+%.3fs", t.Sub(p.start).Seconds())
}

// note records a fault injected at t.
func (p *chaosPhase) note(kind string, t time.Time, format string, args ...any) {
	msg := p.since(t) + " " + fmt.Sprintf(format, args...)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kinds[kind]++
	p.faults = append(p.faults, msg)
}

func (p *chaosPhase) harnessFailure(format string, args ...any) {
	msg := p.since(time.Now()) + " " + fmt.Sprintf(format, args...)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.harness = append(p.harness, msg)
}

// injectFaults runs the process faults one after the other, each at its
// time or once the one before is done; before each it restarts any
// process that exited on its own.
func (p *chaosPhase) injectFaults(ctx context.Context, faults []chaosFault) {
	for _, f := range faults {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(p.start.Add(f.at))):
		}
		p.reviveAll("before a fault")
		if f.kind == "redis" && p.cluster != nil {
			p.failMaster(ctx, f)
			continue
		}
		var proc *chaosProc
		switch f.kind {
		case "worker":
			proc = p.workers[f.target]
		case "serve":
			proc = p.serves[f.target]
		case "redis":
			proc = p.redis
		}
		killed := time.Now()
		proc.kill()
		time.Sleep(f.down)
		if p.restart(proc, "after kill -9") {
			p.note("kill -9 "+f.kind, killed, "kill -9 %s, back (ready) at %s", proc.name, p.since(time.Now()))
		}
	}
}

// failMaster is a Redis fault on a cluster: kill -9 the master serving one
// product's slot (a product of the schedule, picked by the fault's time),
// wait for its replica to take over, wait f.down more, and start the old
// master again, which rejoins as a replica (as a supervisor would restart
// it), and waits until it is in sync. Until then the new master has no
// replica, so with a replica required its product's orders are answered
// ORDER_NOT_REPLICATED.
func (p *chaosPhase) failMaster(ctx context.Context, f chaosFault) {
	sl := p.sales[int(f.at/time.Millisecond)%len(p.sales)]
	slot := redis.ProductSlot(uuid.MustParse(sl.Product))
	victim, err := p.cluster.MasterOf(ctx, slot)
	if err != nil {
		p.harnessFailure("no master for product %s: %v", sl.Product, err)
		return
	}
	killed := time.Now()
	p.cluster.Kill(victim)
	// Once started, a fault runs to the end even when the buyers are done:
	// the checks need a cluster back in shape.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	promoted, err := p.cluster.WaitFailover(wctx, slot, victim)
	if err != nil {
		p.harnessFailure("kill -9 master %s: %v", victim.Addr(), err)
	}
	tookOver := time.Now()
	time.Sleep(f.down)
	if err := p.cluster.Restart(victim); err != nil {
		p.harnessFailure("restart %s: %v", victim.Addr(), err)
		return
	}
	// The next fault waits for the old master to be a replica in sync: a
	// master killed before then has no replica fit to take over.
	if err := p.cluster.WaitHealthy(wctx); err != nil {
		p.harnessFailure("cluster not healthy after %s rejoined: %v", victim.Addr(), err)
	}
	by := "nobody"
	if promoted != nil {
		by = promoted.Addr()
	}
	p.note("kill -9 redis master", killed, "kill -9 master %s of product %s; %s took over after %v; old master back in sync (a replica) at %s",
		victim.Addr(), sl.Product, by, tookOver.Sub(killed).Round(time.Millisecond), p.since(time.Now()))
}

// reviveAll restarts every process that exited without being killed, and
// notes it: the server is expected to ride out what the faults do.
func (p *chaosPhase) reviveAll(when string) {
	procs := slices.Concat(p.serves, p.workers)
	if p.redis != nil {
		procs = append(procs, p.redis)
	}
	for _, proc := range procs {
		if proc.cur == nil { // restarting it failed before
			p.restart(proc, when)
			continue
		}
		exited, err := proc.exited()
		if !exited {
			continue
		}
		p.exited(proc.name, fmt.Sprintf("exited on its own (%v), noticed %s; last lines:\n%s", err, when, tail(proc.cur.out, 15)))
		p.restart(proc, "after it exited, "+when)
	}
}

// restart starts proc again, trying three times: a process that exits while
// starting is the server's doing (noted), one that never comes back is the
// harness's failure.
func (p *chaosPhase) restart(proc *chaosProc, when string) bool {
	var err error
	for range 3 {
		if err = proc.start(p.t); err == nil {
			return true
		}
		p.exited(proc.name, fmt.Sprintf("did not start %s: %v", when, err))
		proc.kill()
		time.Sleep(200 * time.Millisecond)
	}
	p.harnessFailure("could not start %s %s, 3 tries: %v", proc.name, when, err)
	return false
}

// exited notes a process that exited, or failed to start, on its own.
func (p *chaosPhase) exited(name, what string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.exits = append(p.exits, fmt.Sprintf("%s %s %s", p.since(time.Now()), name, what))
}

// reconcileSales calls ReconcileSale as the admin on the schedule.
func (p *chaosPhase) reconcileSales(ctx context.Context, reconciles []chaosReconcile) {
	for _, r := range reconciles {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(p.start.Add(r.at))):
		}
		s := p.sales[r.sale]
		c := chaosCall{RPC: "ReconcileSale", Transport: r.transport, Serve: r.serve, Product: s.Product, Sale: s.ID, Start: time.Now()}
		cctx, cancel := context.WithTimeout(ctx, chaosCallTime)
		if r.transport == "rest" {
			var body map[string]any
			p.restCall(cctx, &c, "POST", p.urls[r.serve]+"/v1/flash-sales/"+s.ID+":reconcile", p.admin, &body)
		} else {
			_, err := flashsalev1.NewFlashSaleServiceClient(p.conns[r.serve]).ReconcileSale(bearer(cctx, p.admin), &flashsalev1.ReconcileSaleRequest{Id: s.ID})
			grpcResult(&c, err)
		}
		cancel()
		c.End = time.Now()
		p.record(c)
		p.mu.Lock()
		p.kinds["ReconcileSale "+c.outcome()]++
		p.mu.Unlock()
	}
}

// settle waits, bounded, for the acknowledged orders to reach PostgreSQL:
// until all of them are there; or the orders table has not changed for a
// while (queue mode: long enough for a worker to claim a dead one's entries)
// and CheckOrder calls none of the missing ones PENDING any more; or 30 s
// have passed, which is a harness failure.
func (p *chaosPhase) settle() {
	quiet := time.Second
	if p.mode == "queue" {
		quiet = 3 * time.Second
	}
	acked := map[string]chaosCall{}
	for _, c := range p.calls {
		if c.acked() {
			acked[c.OrderID] = c
		}
	}
	began, lastChange, last := time.Now(), time.Now(), -1
	for {
		stored := p.storedIDs()
		var missing []chaosCall
		for id, c := range acked {
			if !stored[id] {
				missing = append(missing, c)
			}
		}
		if len(stored) != last {
			last, lastChange = len(stored), time.Now()
		}
		took := time.Since(began).Round(time.Millisecond)
		switch {
		case len(missing) == 0:
			p.t.Logf("settled after %v: all %d acknowledged orders in PostgreSQL", took, len(acked))
			return
		case time.Since(began) > 30*time.Second:
			p.harnessFailure("gave up waiting after 30s for the orders to settle: %d orders, %d of %d acknowledged missing", len(stored), len(missing), len(acked))
			return
		case time.Since(lastChange) >= quiet:
			if pending := p.stillPending(missing); pending > 0 {
				p.t.Logf("after %v: %d acknowledged orders missing, %d of them still PENDING; waiting on", took, len(missing), pending)
				lastChange = time.Now()
				continue
			}
			p.t.Logf("settled after %v: %d orders in PostgreSQL, unchanged for %v; %d of %d acknowledged orders are not there, none PENDING",
				took, len(stored), quiet, len(missing), len(acked))
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// stillPending asks CheckOrder about acknowledged orders missing from
// PostgreSQL and counts those it calls PENDING (only orders of the sale
// CheckOrder reports on can be asked about).
func (p *chaosPhase) stillPending(missing []chaosCall) int {
	index := map[string]int{}
	for i, u := range p.users {
		index[u.id] = i
	}
	n := 0
	for _, m := range missing {
		c := p.checkOnce(index[m.User], m.Product, "grpc", 0)
		p.record(c)
		if retryable(c) || (c.Sale == p.saleOfOrder(m) && c.OrderID == m.OrderID && c.Status == "PENDING") {
			n++
		}
	}
	return n
}

// saleOfOrder is the sale of an acknowledged order as its answer said, or
// the product's sale open throughout the call.
func (p *chaosPhase) saleOfOrder(c chaosCall) string {
	if c.Sale != "" {
		return c.Sale
	}
	for _, s := range p.sales {
		if s.Product == c.Product && !c.Start.Before(s.Starts) && c.End.Before(s.Ends) {
			return s.ID
		}
	}
	return ""
}

func (p *chaosPhase) storedIDs() map[string]bool {
	rows, err := p.db.Query(p.t.Context(), `SELECT id FROM orders`)
	if err != nil {
		p.t.Fatalf("HARNESS: read orders: %v", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		p.t.Fatalf("HARNESS: read orders: %v", err)
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id.String()] = true
	}
	return out
}

// checkOrders asks CheckOrder, after the run, for every user at every
// product they tried, over REST or gRPC at random, retrying a few times
// while there is no answer.
func (p *chaosPhase) checkOrders(rng *rand.Rand) {
	type pair struct {
		user      int
		product   string
		transport string
		serve     int
	}
	index := map[string]int{}
	for i, u := range p.users {
		index[u.id] = i
	}
	seen := map[string]bool{}
	var pairs []pair
	for _, c := range p.calls {
		if c.RPC != "PlaceOrder" || seen[c.User+"/"+c.Product] {
			continue
		}
		seen[c.User+"/"+c.Product] = true
		transport := "grpc"
		if rng.IntN(2) == 0 {
			transport = "rest"
		}
		pairs = append(pairs, pair{index[c.User], c.Product, transport, rng.IntN(len(p.serves))})
	}
	work := make(chan pair)
	var wg sync.WaitGroup
	unanswered := 0
	for range 16 {
		wg.Go(func() {
			for pr := range work {
				for try := range 5 {
					c := p.checkOnce(pr.user, pr.product, pr.transport, (pr.serve+try)%len(p.serves))
					p.record(c)
					if !retryable(c) {
						break
					}
					if try == 4 {
						p.mu.Lock()
						unanswered++
						p.mu.Unlock()
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		})
	}
	for _, pr := range pairs {
		work <- pr
	}
	close(work)
	wg.Wait()
	if unanswered > 0 {
		p.harnessFailure("CheckOrder got no usable answer for %d of %d users and products after 5 tries", unanswered, len(pairs))
	}
}

func (p *chaosPhase) checkOnce(user int, product, transport string, serve int) chaosCall {
	u := p.users[user]
	c := chaosCall{RPC: "CheckOrder", Transport: transport, Serve: serve, User: u.id, Product: product, Start: time.Now()}
	ctx, cancel := context.WithTimeout(p.t.Context(), chaosCallTime)
	defer cancel()
	if transport == "rest" {
		var body struct {
			Order       *restOrder
			FlashSaleID string `json:"flashSaleId"`
		}
		p.restCall(ctx, &c, "GET", p.urls[serve]+"/v1/products/"+product+"/orders/mine", u.token, &body)
		c.Sale = body.FlashSaleID
		if body.Order != nil {
			c.OrderID, c.Status = body.Order.ID, strings.TrimPrefix(body.Order.Status, "ORDER_STATUS_")
		}
	} else {
		r, err := flashsalev1.NewOrderServiceClient(p.conns[serve]).CheckOrder(bearer(ctx, u.token), &flashsalev1.CheckOrderRequest{ProductId: product})
		grpcResult(&c, err)
		c.Sale = r.GetFlashSaleId()
		if o := r.GetOrder(); o != nil {
			c.OrderID, c.Status = o.GetId(), strings.TrimPrefix(o.GetStatus().String(), "ORDER_STATUS_")
		}
	}
	c.End = time.Now()
	return c
}

// readDB reads every order and the products' stock left.
func (p *chaosPhase) readDB() chaosDB {
	t := p.t
	rows, err := p.db.Query(t.Context(), `SELECT id, flash_sale_id, product_id, user_id, status, created_at FROM orders`)
	if err != nil {
		t.Fatalf("HARNESS: read orders: %v", err)
	}
	var db chaosDB
	for rows.Next() {
		var id, sale, product, user uuid.UUID
		var o chaosOrder
		if err := rows.Scan(&id, &sale, &product, &user, &o.Status, &o.Created); err != nil {
			t.Fatalf("HARNESS: read orders: %v", err)
		}
		o.ID, o.Sale, o.Product, o.User = id.String(), sale.String(), product.String(), user.String()
		db.Orders = append(db.Orders, o)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("HARNESS: read orders: %v", err)
	}
	db.Quantity = map[string]int{}
	for id := range p.stock {
		var q int
		if err := p.db.QueryRow(t.Context(), `SELECT quantity FROM products WHERE id = $1`, uuid.MustParse(id)).Scan(&q); err != nil {
			t.Fatalf("HARNESS: read product %s: %v", id, err)
		}
		db.Quantity[id] = q
	}
	return db
}

// chaosShown caps the violations printed per check.
const chaosShown = 20

// report logs what the phase did and saw, and fails the test for each
// violated check and each harness failure, naming the seed.
func (p *chaosPhase) report(checks []chaosCheck, db chaosDB) {
	t := p.t
	tag := fmt.Sprintf("seed %d, mode %s", p.seed, p.mode)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d calls recorded\n", tag, len(p.calls))
	fmt.Fprintf(&b, "  PlaceOrder outcomes: %s\n", formatCounts(chaosOutcomes(p.calls)))
	byProduct := map[string]int{}
	for _, o := range db.Orders {
		byProduct[o.Product]++
	}
	for _, s := range p.sales {
		n := 0
		for _, o := range db.Orders {
			if o.Sale == s.ID {
				n++
			}
		}
		fmt.Fprintf(&b, "  sale %s (%s): %d orders in PostgreSQL; product stock %d, %d sold, %d left\n",
			s.ID, s.Role, n, p.stock[s.Product], byProduct[s.Product], db.Quantity[s.Product])
	}
	fmt.Fprintf(&b, "  faults: %s\n", formatCounts(p.kinds))
	for _, f := range p.faults {
		fmt.Fprintf(&b, "    %s\n", f)
	}
	t.Log(b.String())
	for _, e := range p.exits {
		t.Logf("%s: process exit: %s", tag, e)
	}

	roles := map[string]string{}
	for _, s := range p.sales {
		roles[s.ID] = s.Role
	}
	for _, c := range checks {
		if len(c.Violations) == 0 {
			t.Logf("%s: check %s: ok", tag, c.Name)
			continue
		}
		bySale := map[string]int{}
		var shown []string
		for _, v := range c.Violations {
			bySale[cmp.Or(roles[v.Sale], "no one sale")]++
			if len(shown) < chaosShown {
				shown = append(shown, v.Msg)
			}
		}
		t.Errorf("%s: VIOLATION of check %s: %d (by sale: %s); the first %d:\n    %s",
			tag, c.Name, len(c.Violations), formatCounts(bySale), len(shown), strings.Join(shown, "\n    "))
		if os.Getenv("CHAOS_DEBUG") != "" {
			// Every call of the users named, to see how it came about.
			x := newChaosIndex(chaosHistory{Start: p.start}, db)
			for _, v := range c.Violations {
				for _, cc := range p.calls {
					if cc.User != "" && strings.Contains(v.Msg, "user "+cc.User) {
						t.Logf("history: %s, ended %s", x.describe(cc), p.since(cc.End))
					}
				}
			}
		}
	}
	for _, h := range p.harness {
		t.Errorf("%s: HARNESS (not an invariant): %s", tag, h)
	}
	if len(p.harness) > 0 {
		for _, proc := range slices.Concat(p.serves, p.workers, []*chaosProc{p.redis}) {
			if proc != nil && proc.cur != nil {
				t.Logf("--- %s, last lines of its output:\n%s", proc.name, tail(proc.cur.out, 40))
			}
		}
	}
}

// chaosProc is a process the phase kills and starts again, with the same
// arguments, environment and ports.
type chaosProc struct {
	name  string
	path  string
	args  []string
	env   []string
	ready func() error // nil: nothing to ask
	// minUp is how long a process without ready must run to count as started.
	minUp time.Duration
	cur   *child
}

// start starts the process and waits, up to 30 s, until ready says so (or,
// without ready, until it has run for minUp).
func (c *chaosProc) start(t *testing.T) error {
	ch, err := spawn(t, c.name, 0, c.env, c.path, c.args...)
	if err != nil {
		return err
	}
	c.cur = ch
	if c.ready == nil {
		select {
		case <-ch.done:
			return fmt.Errorf("%s exited while starting (%v):\n%s", c.name, ch.err, tail(ch.out, 20))
		case <-time.After(c.minUp):
			return nil
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := c.ready()
		if err == nil {
			return nil
		}
		select {
		case <-ch.done:
			return fmt.Errorf("%s exited while starting (%v): %v\n%s", c.name, ch.err, err, tail(ch.out, 20))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 30s: %v\n%s", c.name, err, tail(ch.out, 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to go.
func (c *chaosProc) kill() {
	if c.cur != nil {
		c.cur.kill()
		c.cur = nil
	}
}

// exited reports whether the process exited without being killed, and how.
func (c *chaosProc) exited() (bool, error) {
	if c.cur == nil {
		return false, nil // killed, and not started again (reviveAll does)
	}
	select {
	case <-c.cur.done:
		return true, c.cur.err
	default:
		return false, nil
	}
}

// redisPing is a PING over a fresh connection: nil on +PONG, else what it
// got (-LOADING while Redis reads its AOF).
func redisPing(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line = strings.TrimSpace(line); line != "+PONG" {
		return fmt.Errorf("PING: %s", line)
	}
	return nil
}
