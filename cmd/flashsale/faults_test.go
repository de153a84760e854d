package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
	"github.com/flashsale/flashsale/internal/postgres/pgtest"
	redisq "github.com/flashsale/flashsale/internal/redis"
	"github.com/flashsale/flashsale/internal/testenv"
)

// TestFaults breaks the fast order path with real processes: the flashsale
// binary is built once, and each subtest runs `flashsale serve` (and
// `flashsale worker`) as child processes over services it owns, then kills a
// worker, flushes Redis or stops PostgreSQL in the middle of a sale, and
// checks the invariants in PostgreSQL afterwards: no oversell, one order per
// user per sale, no acknowledged order lost.
func TestFaults(t *testing.T) {
	testenv.Long(t, "fault tests run real processes")
	bin := buildFlashsale(t)
	t.Run("WorkerKilledMidBacklog", func(t *testing.T) { testWorkerKilled(t, bin) })
	t.Run("RedisDownMidSale", func(t *testing.T) { testRedisDown(t, bin) })
	t.Run("RedisFlushedMidSale", func(t *testing.T) {
		for _, tc := range []struct {
			mode      string
			reconcile bool
		}{
			{"sync", true},
			{"sync", false},
			{"queue", true},
			{"queue", false},
		} {
			name := tc.mode + "/reload-on-first-use"
			if tc.reconcile {
				name = tc.mode + "/reconcile-rpc"
			}
			t.Run(name, func(t *testing.T) { testRedisFlushed(t, bin, tc.mode, tc.reconcile) })
		}
	})
	t.Run("PostgresStoppedMidLoad", func(t *testing.T) { testPostgresStopped(t, bin) })
}

// testWorkerKilled: queue mode, no in-process workers. A backlog of admitted
// orders waits in Redis; a `flashsale worker` is SIGKILLed once it has written
// part of it (with a batch in hand, not acknowledged), and a second worker
// takes over the dead one's entries after ORDERS_CLAIM_IDLE_SECONDS. Every
// acknowledged order ends up in PostgreSQL exactly once.
func testWorkerKilled(t *testing.T, bin string) {
	const stock, users = 300, 500
	dbURL := pgtest.NewDatabase(t)
	s := startServe(t, bin, map[string]string{
		"DATABASE_URL":              dbURL,
		"REDIS_URL":                 testRedisURL(t),
		"ORDER_MODE":                "queue",
		"ORDERS_WORKER_CONCURRENCY": "0",
	})
	db := openPool(t, dbURL)
	product, saleID, _ := saleOpenNow(t, s.testServer, stock)
	tokens := registerCustomers(t, s.conn, users)

	res := placeConcurrently(t, s.conn, product, tokens, seq(0, users))
	acked := res.ids("PENDING")
	if got, want := len(acked), min(stock, users); got != want {
		t.Fatalf("acknowledged (PENDING) orders = %d, want %d; outcomes %v", got, want, res.counts())
	}
	if got, want := res.counts()["SOLD_OUT"], users-stock; got != want {
		t.Errorf("SOLD_OUT answers = %d, want %d; outcomes %v", got, want, res.counts())
	}
	if n := countOrders(t, db, saleID); n != 0 {
		t.Fatalf("orders in PostgreSQL before any worker ran = %d, want 0", n)
	}

	// Each batch's INSERT sleeps inside its transaction, so the first worker
	// is reliably caught between two commits, most likely with a batch read
	// from the stream and not yet acknowledged. The trigger is in this
	// test's own database.
	if _, err := db.Exec(t.Context(), `
CREATE FUNCTION fault_slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.1); RETURN NULL; END $$;
CREATE TRIGGER fault_slow_insert AFTER INSERT ON orders
FOR EACH STATEMENT EXECUTE FUNCTION fault_slow_insert();`); err != nil {
		t.Fatalf("install slow-insert trigger: %v", err)
	}

	workerEnv := maps.Clone(s.env)
	maps.Copy(workerEnv, map[string]string{
		"ORDERS_WORKER_CONCURRENCY": "1",
		"ORDERS_BATCH_SIZE":         "20",
		"ORDERS_CLAIM_IDLE_SECONDS": "1",
	})
	rc := rawRedis(t, s.env["REDIS_URL"])
	stream := s.env["REDIS_KEY_PREFIX"] + ":{p:" + product + "}:stream"
	inFlight := func() int64 {
		// XPENDING summary: [count, lowest id, highest id, consumers].
		r, err := rc.Do(t.Context(), rc.B().Xpending().Key(stream).Group(redisq.Group).Build()).ToArray()
		if err != nil || len(r) == 0 {
			return 0
		}
		n, _ := r[0].AsInt64()
		return n
	}
	first := startChild(t, "worker-1", childEnv(workerEnv), bin, "worker")
	// Kill it once part of the backlog is written and it holds a batch it
	// has read but not acknowledged (it sits in the slow INSERT).
	var atKill int
	waitFor(t, 30*time.Second, "worker-1 to write part of the backlog", func() (bool, string) {
		select {
		case <-first.done:
			t.Fatalf("worker-1 exited on its own: %v", first.err)
		default:
		}
		atKill = countOrders(t, db, saleID)
		return atKill > 0 && inFlight() > 0, fmt.Sprintf("%d orders written", atKill)
	})
	first.kill()
	atKill = countOrders(t, db, saleID)
	if atKill >= len(acked) {
		t.Fatalf("worker-1 wrote all %d orders before it could be killed; the test proves nothing", atKill)
	}
	// Usually the dead worker's batch, left for worker-2 to claim; 0 only if
	// that batch committed and was acknowledged just before the kill.
	t.Logf("worker-1 SIGKILLed with %d of %d orders written and %d stream entries delivered but not acknowledged",
		atKill, len(acked), inFlight())

	startChild(t, "worker-2", childEnv(workerEnv), bin, "worker")
	waitFor(t, 45*time.Second, "the backlog to drain", func() (bool, string) {
		n := countOrders(t, db, saleID)
		backlog, err := rc.Do(t.Context(), rc.B().Xlen().Key(stream).Build()).AsInt64()
		if err != nil {
			return false, err.Error()
		}
		return n == len(acked) && backlog == 0, fmt.Sprintf("%d orders in PostgreSQL, %d entries in the stream", n, backlog)
	})

	checkSale(t, db, saleID, product, stock, min(stock, users))
	checkAckedStored(t, db, saleID, acked)
}

// testRedisFlushed: a private Redis is flushed (FLUSHALL) after half the
// users bought; the gate state is rebuilt from PostgreSQL, by the admin's
// ReconcileSale or, without it, by the first order attempt (Admit finds no
// state, and the service loads it from PostgreSQL). Then every user tries
// again: nobody buys twice and nothing is oversold.
func testRedisFlushed(t *testing.T, bin, mode string, reconcile bool) {
	const stock, users = 60, 100
	redisURL := startPrivateRedis(t)
	dbURL := pgtest.NewDatabase(t)
	s := startServe(t, bin, map[string]string{
		"DATABASE_URL": dbURL,
		"REDIS_URL":    redisURL,
		"ORDER_MODE":   mode,
		// Only the start-up pass and the on-demand reconcile run.
		"RECONCILE_INTERVAL_SECONDS": "3600",
		"ORDERS_WORKER_CONCURRENCY":  "1",
		"ORDERS_CLAIM_IDLE_SECONDS":  "1",
	})
	db := openPool(t, dbURL)
	rc := rawRedis(t, redisURL)
	product, saleID, adminToken := saleOpenNow(t, s.testServer, stock)
	tokens := registerCustomers(t, s.conn, users)
	ok := "CONFIRMED"
	if mode == "queue" {
		ok = "PENDING"
	}

	firstHalf := seq(0, users/2)
	res := placeConcurrently(t, s.conn, product, tokens, firstHalf)
	if got := res.counts()[ok]; got != len(firstHalf) {
		t.Fatalf("first half: %s = %d, want %d; outcomes %v", ok, got, len(firstHalf), res.counts())
	}
	acked := res.ids(ok)
	waitOrders(t, db, saleID, len(firstHalf))

	if err := rc.Do(t.Context(), rc.B().Flushall().Build()).Error(); err != nil {
		t.Fatalf("FLUSHALL: %v", err)
	}
	stockKey := s.env["REDIS_KEY_PREFIX"] + ":{p:" + product + "}:stock"
	if reconcile {
		r, err := flashsalev1.NewFlashSaleServiceClient(s.conn).ReconcileSale(bearer(t.Context(), adminToken), &flashsalev1.ReconcileSaleRequest{Id: saleID})
		if err != nil {
			t.Fatalf("ReconcileSale: %v", err)
		}
		if r.GetRemaining() != stock-int32(len(firstHalf)) || r.GetBuyers() != int32(len(firstHalf)) {
			t.Errorf("ReconcileSale = remaining %d, buyers %d; want %d, %d", r.GetRemaining(), r.GetBuyers(), stock-len(firstHalf), len(firstHalf))
		}
	} else if n, err := rc.Do(t.Context(), rc.B().Exists().Key(stockKey).Build()).AsInt64(); err != nil || n != 0 {
		t.Fatalf("gate stock key after FLUSHALL: exists %d (%v), want gone", n, err)
	}

	res2 := placeConcurrently(t, s.conn, product, tokens, seq(0, users))
	t.Logf("after the flush, every user again: %v", res2.counts())
	for _, a := range res2 {
		out := a.outcome()
		switch {
		case a.user < len(firstHalf) && out != "ALREADY_ORDERED" && out != "SOLD_OUT":
			t.Errorf("user %d, who bought before the flush, got %s, want ALREADY_ORDERED or SOLD_OUT", a.user, out)
		case a.user >= len(firstHalf) && out != ok && out != "SOLD_OUT":
			t.Errorf("user %d got %s, want %s or SOLD_OUT", a.user, out, ok)
		}
	}
	want := min(stock, users)
	if got := res2.counts()[ok]; got != want-len(firstHalf) {
		t.Errorf("after the flush: %s = %d, want %d; outcomes %v", ok, got, want-len(firstHalf), res2.counts())
	}
	acked = append(acked, res2.ids(ok)...)
	waitOrders(t, db, saleID, len(acked))

	checkSale(t, db, saleID, product, stock, want)
	checkAckedStored(t, db, saleID, acked)
	if n, err := rc.Do(t.Context(), rc.B().Get().Key(stockKey).Build()).AsInt64(); err != nil || n != 0 {
		t.Errorf("gate stock after the sale = %d (%v), want 0", n, err)
	}
}

// testPostgresStopped: sync mode over a private PostgreSQL that is stopped
// (pg_ctl stop -m fast) in the middle of the sale, while a batch of orders is
// inside its transaction. PlaceOrder then answers Unavailable (REST 503 with
// Retry-After), never Internal, both for the orders in flight and for new
// ones, and releases what the failed orders took from the gate: once
// PostgreSQL is back the same users buy, and the database and the gate hold
// exactly the confirmed orders, each with its unit of stock.
func testPostgresStopped(t *testing.T, bin string) {
	const stock = 100
	pg := startPrivatePostgres(t)
	dbURL := pg.createDatabase(t, "flashsale")
	migrateEnv := map[string]string{"DATABASE_URL": dbURL, "AUTH_JWT_SECRET": testSecret}
	if out, err := runCommand(exec.Command(bin, "migrate"), childEnv(migrateEnv)); err != nil {
		t.Fatalf("flashsale migrate: %v\n%s", err, out)
	}
	s := startServe(t, bin, map[string]string{
		"DATABASE_URL": dbURL,
		"REDIS_URL":    testRedisURL(t),
		"ORDER_MODE":   "sync",
	})
	product, saleID, _ := saleOpenNow(t, s.testServer, stock)
	tokens := registerCustomers(t, s.conn, 60)
	// before: buy with PostgreSQL up; inFlight: their batch is in its
	// transaction when PostgreSQL stops; newGRPC, newREST: ask while it is down.
	before, inFlight, newGRPC, newREST := seq(0, 20), seq(20, 40), seq(40, 50), seq(50, 60)

	res := placeConcurrently(t, s.conn, product, tokens, before)
	if got := res.counts()["CONFIRMED"]; got != len(before) {
		t.Fatalf("before the stop: CONFIRMED = %d, want %d; outcomes %v", got, len(before), res.counts())
	}
	confirmed := res.ids("CONFIRMED")

	// Hold the next batch inside its transaction (in this test's own
	// database), so PostgreSQL stops under it.
	db := openPool(t, dbURL)
	if _, err := db.Exec(t.Context(), `
CREATE FUNCTION fault_hold_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(60); RETURN NULL; END $$;
CREATE TRIGGER fault_hold_insert AFTER INSERT ON orders
FOR EACH STATEMENT EXECUTE FUNCTION fault_hold_insert();`); err != nil {
		t.Fatalf("install hold trigger: %v", err)
	}
	inFlightDone := make(chan attempts, 1)
	go func() { inFlightDone <- placeConcurrently(t, s.conn, product, tokens, inFlight) }()
	waitFor(t, 30*time.Second, "an order batch held in its transaction", func() (bool, string) {
		var n int
		err := db.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'`).Scan(&n)
		return err == nil && n > 0, fmt.Sprintf("%d backends in pg_sleep (%v)", n, err)
	})
	db.Close()
	pg.stop(t)

	for _, a := range <-inFlightDone {
		if a.code != codes.Unavailable {
			t.Errorf("gRPC PlaceOrder of user %d, in flight when PostgreSQL stopped = %s (%v), want Unavailable", a.user, a.outcome(), a.err)
		}
	}
	if n := metricValue(t, s.baseURL, `flashsale_order_outcomes_total{outcome="Unavailable"}`); n < 1 {
		t.Errorf("no order failed in the order service while PostgreSQL was down (outcome Unavailable = %v); the release path was not exercised", n)
	}
	if code, err := getCode(s.baseURL + "/readyz"); code == http.StatusOK {
		t.Errorf("/readyz with PostgreSQL stopped = %d (%v), want not 200", code, err)
	}
	for _, a := range placeConcurrently(t, s.conn, product, tokens, newGRPC) {
		if a.code != codes.Unavailable {
			t.Errorf("gRPC PlaceOrder of user %d with PostgreSQL stopped = %s (%v), want Unavailable", a.user, a.outcome(), a.err)
		}
	}
	for _, u := range newREST {
		r := httpRaw(t, "POST", s.baseURL+"/v1/products/"+product+"/orders", tokens[u], "{}")
		if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Errorf("REST PlaceOrder of user %d with PostgreSQL stopped = %d %v (Retry-After %q), want 503 with Retry-After",
				u, r.code, r.body, r.header.Get("Retry-After"))
		}
	}

	pg.start(t)
	db = openPool(t, dbURL)
	if _, err := db.Exec(t.Context(), `DROP TRIGGER fault_hold_insert ON orders`); err != nil {
		t.Fatalf("drop hold trigger: %v", err)
	}
	waitFor(t, 30*time.Second, "/readyz to answer 200", func() (bool, string) {
		code, err := getCode(s.baseURL + "/readyz")
		return code == http.StatusOK, fmt.Sprintf("%d %v", code, err)
	})
	retry := slices.Concat(inFlight, newGRPC, newREST)
	res = placeConcurrently(t, s.conn, product, tokens, retry)
	for _, a := range res {
		if a.outcome() != "CONFIRMED" {
			t.Errorf("user %d after PostgreSQL came back got %s, want CONFIRMED (a failed order must not keep the admission)", a.user, a.outcome())
		}
	}
	confirmed = append(confirmed, res.ids("CONFIRMED")...)
	for _, a := range placeConcurrently(t, s.conn, product, tokens, before) {
		if a.outcome() != "ALREADY_ORDERED" {
			t.Errorf("user %d, who bought before the stop, got %s, want ALREADY_ORDERED", a.user, a.outcome())
		}
	}

	checkSale(t, db, saleID, product, stock, len(before)+len(retry))
	checkAckedStored(t, db, saleID, confirmed)
	rc := rawRedis(t, s.env["REDIS_URL"])
	stockKey := s.env["REDIS_KEY_PREFIX"] + ":{p:" + product + "}:stock"
	if n, err := rc.Do(t.Context(), rc.B().Get().Key(stockKey).Build()).AsInt64(); err != nil || n != int64(stock-len(confirmed)) {
		t.Errorf("gate stock = %d (%v), want %d: the units failed orders took must be given back", n, err, stock-len(confirmed))
	}
}

// metricValue reads one sample (name with its labels) from /metrics; 0 when absent.
func metricValue(t *testing.T, baseURL, sample string) float64 {
	t.Helper()
	resp, err := http.Get(baseURL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", sample, err)
			}
			return f
		}
	}
	return 0
}

// buildFlashsale builds this package's binary into the test's temporary
// directory (removed when the test ends).
func buildFlashsale(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "flashsale")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// child is a process a test started; it is stopped in t.Cleanup, and its
// output is logged when the test failed.
type child struct {
	name string
	cmd  *exec.Cmd
	out  *testenv.Buffer
	done chan struct{} // closed once the process has exited
	err  error         // its exit status, set before done is closed
}

func startChild(t *testing.T, name string, env []string, path string, args ...string) *child {
	t.Helper()
	c, err := spawn(t, name, 60, env, path, args...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// spawn is startChild for goroutines other than the test's, which may not
// end the test: it returns the error instead. When the test has failed, the
// cleanup logs the last tailLines lines of the process's output (none when
// tailLines is 0: a caller that starts many processes logs the ones that
// matter).
func spawn(t *testing.T, name string, tailLines int, env []string, path string, args ...string) (*child, error) {
	c := &child{name: name, out: &testenv.Buffer{}, done: make(chan struct{})}
	c.cmd = exec.Command(path, args...)
	c.cmd.Env = env
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { c.err = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		c.stop()
		if t.Failed() && tailLines > 0 {
			t.Logf("--- %s (%v), last lines of its output:\n%s", name, c.err, tail(c.out, tailLines))
		}
	})
	return c, nil
}

// kill sends SIGKILL and waits for the process to go.
func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// stop asks the process to shut down (SIGTERM), killing it if it lingers.
func (c *child) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		c.kill()
	}
}

// tail is the last n lines of a process's output, for the test log.
func tail(b *testenv.Buffer, n int) string {
	lines := strings.SplitAfter(b.String(), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "")
}

// childEnv is a minimal environment with vars added: the children see no
// configuration of the test process.
func childEnv(vars map[string]string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		env = append(env, k+"="+vars[k])
	}
	return env
}

func runCommand(cmd *exec.Cmd, env []string) ([]byte, error) {
	cmd.Env = env
	return cmd.CombinedOutput()
}

// freePort is a TCP port nothing listened on a moment ago, below Linux's
// ephemeral range (32768-60999), so a server restarted on it never finds it
// taken by some connection's local end; each is handed out once per test
// binary.
func freePort(t *testing.T) int {
	t.Helper()
	testPorts.Lock()
	defer testPorts.Unlock()
	for range 1000 {
		port := 20000 + mrand.IntN(12000)
		if testPorts.taken[port] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		l.Close()
		testPorts.taken[port] = true
		return port
	}
	t.Fatal("HARNESS: no free port in 20000-31999")
	return 0
}

// testPorts are the ports freePort handed out in this test binary: port 0
// can give the same port to two listeners asked for one after the other.
var testPorts = struct {
	sync.Mutex
	taken map[int]bool
}{taken: map[int]bool{}}

// serveProc is a `flashsale serve` child process and the settings it runs with.
type serveProc struct {
	*testServer
	env  map[string]string
	proc *child
}

// startServe runs `flashsale serve` on free loopback ports with vars over
// the test defaults (a fresh Redis key prefix, the test secret and admin,
// rate limits off) and waits for /readyz.
func startServe(t *testing.T, bin string, vars map[string]string) *serveProc {
	t.Helper()
	env := map[string]string{
		"REDIS_KEY_PREFIX": "fsfault-" + rand.Text()[:12],
		"AUTH_JWT_SECRET":  testSecret,
		"ADMIN_EMAIL":      testAdminEmail,
		"ADMIN_PASSWORD":   testAdminPassword,
		"RL_DISABLED":      "true",
		// Tests sign up users at once, and a hash under -race takes ~100 ms
		// on a busy box: let them queue for a slot rather than get 503s.
		"AUTH_HASH_WAIT_MS": "60000",
		// The test Redis servers keep no AOF; startup_test.go tests the refusal.
		"ORDERS_QUEUE_ALLOW_VOLATILE": "true",
		// Warnings and errors only: one info line per call would bury them.
		"LOG_LEVEL": "warn",
		// Stopped by the test, with nothing to drain for.
		"SHUTDOWN_DRAIN_SECONDS": "0",
		"HTTP_ADDR":              "127.0.0.1:" + strconv.Itoa(freePort(t)),
		"GRPC_ADDR":              "127.0.0.1:" + strconv.Itoa(freePort(t)),
	}
	maps.Copy(env, vars)
	p := startChild(t, "serve", childEnv(env), bin, "serve")
	s := &serveProc{testServer: &testServer{baseURL: "http://" + env["HTTP_ADDR"]}, env: env, proc: p}
	waitFor(t, 30*time.Second, "serve to be ready", func() (bool, string) {
		select {
		case <-p.done:
			t.Fatalf("serve exited: %v\n%s", p.err, tail(p.out, 40))
		default:
		}
		code, err := getCode(s.baseURL + "/readyz")
		return code == http.StatusOK, fmt.Sprintf("/readyz %d %v", code, err)
	})
	conn, err := grpc.NewClient(env["GRPC_ADDR"], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s.conn = conn
	return s
}

// getCode is the status of a GET, or the transport error.
func getCode(url string) (int, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitFor polls cond until it holds, failing the test after d with cond's
// last description of what it saw.
func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last saw: %s", d, what, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// registerCustomers signs n customers up over gRPC and returns their tokens.
// A few sign up at a time: each one hashes a password with argon2id (19 MiB),
// and hundreds at once would only pile up memory.
func registerCustomers(t *testing.T, conn *grpc.ClientConn, n int) []string {
	t.Helper()
	authc := flashsalev1.NewAuthServiceClient(conn)
	tokens := make([]string, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			r, err := authc.Register(t.Context(), &flashsalev1.RegisterRequest{Email: fmt.Sprintf("buyer%d@example.com", i), Password: "buyer-password"})
			tokens[i], errs[i] = r.GetAccessToken(), err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("register: %v", err)
	}
	return tokens
}

// attempt is one PlaceOrder call and its result.
type attempt struct {
	user   int
	order  *flashsalev1.Order // nil when err is set
	err    error
	code   codes.Code
	reason string // the ErrorInfo reason, if any
}

// outcome is the order's status (PENDING, CONFIRMED), else the error's
// reason, else its code.
func (a attempt) outcome() string {
	switch {
	case a.err == nil:
		return strings.TrimPrefix(a.order.GetStatus().String(), "ORDER_STATUS_")
	case a.reason != "":
		return a.reason
	}
	return a.code.String()
}

type attempts []attempt

// counts is how many attempts had each outcome.
func (as attempts) counts() map[string]int {
	m := map[string]int{}
	for _, a := range as {
		m[a.outcome()]++
	}
	return m
}

// ids are the order ids of the attempts with the outcome.
func (as attempts) ids(outcome string) []string {
	var ids []string
	for _, a := range as {
		if a.err == nil && a.outcome() == outcome {
			ids = append(ids, a.order.GetId())
		}
	}
	return ids
}

// placeConcurrently has each of users (indexes into tokens) place one order
// for the product over gRPC, all released at once.
func placeConcurrently(t *testing.T, conn *grpc.ClientConn, productID string, tokens []string, users []int) attempts {
	t.Helper()
	orders := flashsalev1.NewOrderServiceClient(conn)
	out := make(attempts, len(users))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(bearer(t.Context(), tokens[u]), 30*time.Second)
			defer cancel()
			<-start
			r, err := orders.PlaceOrder(ctx, &flashsalev1.PlaceOrderRequest{ProductId: productID})
			a := attempt{user: u, order: r.GetOrder(), err: err}
			if err != nil {
				st := status.Convert(err)
				a.code = st.Code()
				for _, d := range st.Details() {
					if info, ok := d.(*errdetails.ErrorInfo); ok {
						a.reason = info.GetReason()
					}
				}
			}
			out[i] = a
		})
	}
	close(start)
	wg.Wait()
	return out
}

// seq is from, from+1, ..., to-1.
func seq(from, to int) []int {
	s := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func openPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func countOrders(t *testing.T, db *pgxpool.Pool, saleID string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(t.Context(), `SELECT count(*) FROM orders WHERE flash_sale_id = $1`, uuid.MustParse(saleID)).Scan(&n); err != nil {
		t.Fatalf("count orders: %v", err)
	}
	return n
}

// waitOrders waits until the sale has n orders in PostgreSQL (at once in
// sync mode; once the workers are done in queue mode).
func waitOrders(t *testing.T, db *pgxpool.Pool, saleID string, n int) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("%d orders in PostgreSQL", n), func() (bool, string) {
		got := countOrders(t, db, saleID)
		return got == n, fmt.Sprintf("%d orders", got)
	})
}

// checkSale asserts the sale's invariants in PostgreSQL: exactly want
// orders, no user twice, and every order's unit taken from the stock.
func checkSale(t *testing.T, db *pgxpool.Pool, saleID, productID string, initial, want int) {
	t.Helper()
	var orders, remaining, twice int
	err := db.QueryRow(t.Context(), `
SELECT (SELECT count(*) FROM orders WHERE flash_sale_id = $1),
       (SELECT quantity FROM products WHERE id = $2),
       (SELECT count(*) FROM (SELECT user_id FROM orders WHERE flash_sale_id = $1
                              GROUP BY user_id HAVING count(*) > 1) AS d)`,
		uuid.MustParse(saleID), uuid.MustParse(productID)).Scan(&orders, &remaining, &twice)
	if err != nil {
		t.Fatalf("read sale facts: %v", err)
	}
	if orders != want {
		t.Errorf("orders = %d, want %d", orders, want)
	}
	if orders > initial || remaining < 0 {
		t.Errorf("oversold: %d orders, %d left, of %d", orders, remaining, initial)
	}
	if orders+remaining != initial {
		t.Errorf("sold %d + remaining %d = %d, want the initial stock %d", orders, remaining, orders+remaining, initial)
	}
	if twice != 0 {
		t.Errorf("%d users hold two orders in the sale", twice)
	}
}

// checkAckedStored asserts that the sale's orders in PostgreSQL are exactly
// the acknowledged ones.
func checkAckedStored(t *testing.T, db *pgxpool.Pool, saleID string, acked []string) {
	t.Helper()
	rows, err := db.Query(t.Context(), `SELECT id FROM orders WHERE flash_sale_id = $1`, uuid.MustParse(saleID))
	if err != nil {
		t.Fatalf("read orders: %v", err)
	}
	stored, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		t.Fatalf("read orders: %v", err)
	}
	in := map[string]bool{}
	for _, id := range stored {
		in[id.String()] = true
	}
	var missing []string
	seen := map[string]bool{}
	for _, id := range acked {
		if seen[id] {
			t.Errorf("order id %s acknowledged twice", id)
		}
		seen[id] = true
		if !in[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d acknowledged orders are not in PostgreSQL, e.g. %v", len(missing), missing[:min(3, len(missing))])
	}
	if len(stored) != len(seen) {
		t.Errorf("PostgreSQL holds %d orders of the sale, %d were acknowledged", len(stored), len(seen))
	}
}

// rawRedis is a plain client for the test's own reads and FLUSHALL.
func rawRedis(t *testing.T, url string) rueidis.Client {
	t.Helper()
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatalf("redis %s: %v", url, err)
	}
	t.Cleanup(c.Close)
	return c
}

// testRedisDown: with Redis gone, the fast path answers Unavailable (REST
// 503 with Retry-After), never Internal; /readyz says not ready; and once
// Redis is back (empty), orders go through again.
func testRedisDown(t *testing.T, bin string) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Missing(t, "redis-server not installed (apt-get install redis-server): %v", err)
	}
	port := strconv.Itoa(freePort(t))
	dir := t.TempDir()
	startRedis := func() *child {
		return startChild(t, "redis-server", childEnv(nil), path,
			"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	}
	redisProc := startRedis()
	redisURL := "redis://127.0.0.1:" + port + "/0"
	waitFor(t, 10*time.Second, "the private redis-server", func() (bool, string) {
		code, err := exec.Command("redis-cli", "-u", redisURL, "ping").CombinedOutput()
		return err == nil && strings.TrimSpace(string(code)) == "PONG", string(code)
	})
	s := startServe(t, bin, map[string]string{"DATABASE_URL": pgtest.NewDatabase(t), "REDIS_URL": redisURL, "ORDER_MODE": "sync"})
	product, _, _ := saleOpenNow(t, s.testServer, 10)
	tokens := registerCustomers(t, s.conn, 3)
	if code, body := httpDo(t, "POST", s.baseURL+"/v1/products/"+product+"/orders", tokens[0], "{}"); code != 200 {
		t.Fatalf("order before = %d %v", code, body)
	}

	redisProc.kill()
	waitFor(t, 10*time.Second, "/readyz to fail", func() (bool, string) {
		code, err := getCode(s.baseURL + "/readyz")
		return code == http.StatusServiceUnavailable, fmt.Sprintf("/readyz %d %v", code, err)
	})
	r := httpRaw(t, "POST", s.baseURL+"/v1/products/"+product+"/orders", tokens[1], "{}")
	if r.code != 503 || r.header.Get("Retry-After") == "" {
		t.Errorf("order with Redis down = %d %v (Retry-After %q), want 503 with Retry-After", r.code, r.body, r.header.Get("Retry-After"))
	}
	_, err = flashsalev1.NewOrderServiceClient(s.conn).PlaceOrder(bearer(t.Context(), tokens[1]), &flashsalev1.PlaceOrderRequest{ProductId: product})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("gRPC order with Redis down = %v, want Unavailable", err)
	}

	startRedis()
	waitFor(t, 30*time.Second, "orders to go through again", func() (bool, string) {
		code, body := httpDo(t, "POST", s.baseURL+"/v1/products/"+product+"/orders", tokens[2], "{}")
		return code == 200, fmt.Sprintf("%d %v", code, body)
	})
}

// startPrivateRedis runs a throwaway redis-server (no persistence) on a
// free port, so the test may FLUSHALL it, and returns its URL.
func startPrivateRedis(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Missing(t, "redis-server not installed (apt-get install redis-server): %v", err)
	}
	port := strconv.Itoa(freePort(t))
	startChild(t, "redis-server", childEnv(nil), path,
		"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	url := "redis://127.0.0.1:" + port + "/0"
	waitFor(t, 10*time.Second, "the private redis-server", func() (bool, string) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		c, err := redisq.New(ctx, url)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
	return url
}

// privatePG is a throwaway PostgreSQL cluster the test starts and stops.
type privatePG struct {
	bin  string // the folder of initdb and pg_ctl
	dir  string // the cluster's folder: data, log, socket
	port int
}

// startPrivatePostgres creates a cluster in a new folder under the temporary
// directory and starts it on a free port. As root, PostgreSQL's programs run
// as the postgres user, which must own (and reach) the folder.
func startPrivatePostgres(t *testing.T) *privatePG {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(bins, func(i, j int) bool { return pgMajor(bins[i]) < pgMajor(bins[j]) })
	var bin string
	if len(bins) > 0 {
		bin = filepath.Dir(bins[len(bins)-1])
	} else if p, err := exec.LookPath("initdb"); err == nil {
		bin = filepath.Dir(p)
	} else {
		testenv.Missing(t, "no PostgreSQL server programs (initdb, pg_ctl) installed (apt-get install postgresql)")
	}
	// Not t.TempDir: its parents are private to root, out of the postgres user's reach.
	dir, err := os.MkdirTemp("", "flashsale-fault-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			testenv.Missing(t, "running as root without a postgres user to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	pg := &privatePG{bin: bin, dir: dir, port: freePort(t)}
	if out, err := pg.run("initdb", "-D", pg.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	pg.start(t)
	t.Cleanup(func() {
		if _, err := pg.run("pg_ctl", "status", "-D", pg.data()); err == nil {
			pg.run("pg_ctl", "stop", "-D", pg.data(), "-m", "immediate", "-w")
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(pg.dir, "postgres.log"))
			t.Logf("--- private PostgreSQL log:\n%s", log)
		}
	})
	return pg
}

func pgMajor(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

func (pg *privatePG) data() string { return filepath.Join(pg.dir, "data") }

// run runs one of PostgreSQL's programs, as the postgres user when root
// (they refuse to run as root), from / in case that user cannot reach the
// working directory.
func (pg *privatePG) run(program string, args ...string) ([]byte, error) {
	path := filepath.Join(pg.bin, program)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = "/"
	return cmd.CombinedOutput()
}

// start starts the server and waits until it accepts connections.
func (pg *privatePG) start(t *testing.T) {
	t.Helper()
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off", pg.port, pg.dir)
	if out, err := pg.run("pg_ctl", "start", "-D", pg.data(), "-l", filepath.Join(pg.dir, "postgres.log"), "-w", "-t", "60", "-o", opts); err != nil {
		log, _ := os.ReadFile(filepath.Join(pg.dir, "postgres.log"))
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

// stop shuts the server down, ending every session (-m fast), and waits.
func (pg *privatePG) stop(t *testing.T) {
	t.Helper()
	if out, err := pg.run("pg_ctl", "stop", "-D", pg.data(), "-m", "fast", "-w", "-t", "60"); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

// createDatabase creates a database and returns its URL.
func (pg *privatePG) createDatabase(t *testing.T, name string) string {
	t.Helper()
	base := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/", pg.port)
	conn, err := pgx.Connect(t.Context(), base+"postgres?sslmode=disable")
	if err != nil {
		t.Fatalf("connect to the private PostgreSQL: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database: %v", err)
	}
	return base + name + "?sslmode=disable"
}
