package main

import (
	"crypto/rand"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
	"github.com/flashsale/flashsale/internal/postgres/pgtest"
	"github.com/flashsale/flashsale/internal/testenv"
)

// TestStartup runs `flashsale serve` and `flashsale worker` as child
// processes against Redis and PostgreSQL servers the test starts, stops
// and restarts: waiting for them at start, giving up after
// STARTUP_TIMEOUT_SECONDS, refusing a Redis without an AOF in queue mode,
// and noticing a Redis restart.
func TestStartup(t *testing.T) {
	testenv.Long(t, "start-up tests run real processes")
	bin := buildFlashsale(t)
	t.Run("QueueRefusesVolatileRedis", func(t *testing.T) { testQueueRefusesVolatile(t, bin) })
	t.Run("QueueStopsTakingOrdersWithoutAOF", func(t *testing.T) { testQueueStopsWithoutAOF(t, bin) })
	t.Run("ReconcilesAfterRedisRestart", func(t *testing.T) { testReconcileAfterRestart(t, bin) })
	t.Run("WaitsForDependencies", func(t *testing.T) { testWaitsForDependencies(t, bin) })
	t.Run("GivesUpAfterStartupTimeout", func(t *testing.T) { testStartupTimeout(t, bin) })
}

// testQueueRefusesVolatile: in queue mode serve and worker exit non-zero,
// saying why, on a Redis with appendonly no; ORDERS_QUEUE_ALLOW_VOLATILE=true
// lets serve start, with a warning, and sync mode needs no AOF at all.
func testQueueRefusesVolatile(t *testing.T, bin string) {
	redisURL := startPrivateRedis(t) // appendonly no
	dbURL := pgtest.NewDatabase(t)
	vars := map[string]string{
		"DATABASE_URL":                dbURL,
		"REDIS_URL":                   redisURL,
		"ORDER_MODE":                  "queue",
		"ORDERS_QUEUE_ALLOW_VOLATILE": "false",
	}
	for _, command := range []string{"serve", "worker"} {
		p := startChild(t, command, childEnv(startupEnv(t, vars)), bin, command)
		err := waitExit(t, p, 30*time.Second)
		out := tail(p.out, 20)
		if err == nil {
			t.Errorf("%s in queue mode on a Redis without AOF exited 0, want an error; output:\n%s", command, out)
		}
		for _, want := range []string{"appendonly yes", "ORDERS_QUEUE_ALLOW_VOLATILE=true"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s's output does not say %q:\n%s", command, want, out)
			}
		}
	}

	s := startServe(t, bin, map[string]string{"DATABASE_URL": dbURL, "REDIS_URL": redisURL, "ORDER_MODE": "queue"}) // allowed by default in tests
	if out := tail(s.proc.out, 100); !strings.Contains(out, "ORDERS_QUEUE_ALLOW_VOLATILE=true") {
		t.Errorf("serve allowed a volatile Redis without a warning; output:\n%s", out)
	}
	product, _, _ := saleOpenNow(t, s.testServer, 5)
	tokens := registerCustomers(t, s.conn, 1)
	if code, body := httpDo(t, "POST", s.baseURL+"/v1/products/"+product+"/orders", tokens[0], "{}"); code != http.StatusAccepted {
		t.Errorf("order with ORDERS_QUEUE_ALLOW_VOLATILE=true = %d %v, want 202", code, body)
	}
	startServe(t, bin, map[string]string{
		"DATABASE_URL": dbURL, "REDIS_URL": redisURL, "ORDER_MODE": "sync", "ORDERS_QUEUE_ALLOW_VOLATILE": "false",
	})
}

// testQueueStopsWithoutAOF: serve in queue mode on a Redis with an AOF takes
// orders; once the AOF is turned off (CONFIG SET) it fails /readyz and
// answers PlaceOrder Unavailable (REST 503 + Retry-After) until it is on
// again; a Redis restarted without an AOF is refused the same way.
func testQueueStopsWithoutAOF(t *testing.T, bin string) {
	rp := newRedisProc(t)
	rp.start("--appendonly", "yes")
	s := startServe(t, bin, map[string]string{
		"DATABASE_URL":                pgtest.NewDatabase(t),
		"REDIS_URL":                   rp.url(),
		"ORDER_MODE":                  "queue",
		"ORDERS_QUEUE_ALLOW_VOLATILE": "false",
	})
	rc := rawRedis(t, rp.url())
	product, _, _ := saleOpenNow(t, s.testServer, 10)
	tokens := registerCustomers(t, s.conn, 4)
	order := func(user int) httpResult {
		return httpRaw(t, "POST", s.baseURL+"/v1/products/"+product+"/orders", tokens[user], "{}")
	}
	if r := order(0); r.code != http.StatusAccepted {
		t.Fatalf("order with the AOF on = %d %v, want 202", r.code, r.body)
	}
	refused := func(when string, user int) {
		t.Helper()
		waitFor(t, 15*time.Second, "/readyz to fail "+when, func() (bool, string) {
			code, body := httpDo(t, "GET", s.baseURL+"/readyz", "", nil)
			return code == http.StatusServiceUnavailable && body["dependency"] == "redis_aof", fmt.Sprintf("%d %v", code, body)
		})
		if r := order(user); r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Errorf("REST order %s = %d %v (Retry-After %q), want 503 with Retry-After", when, r.code, r.body, r.header.Get("Retry-After"))
		}
		_, err := flashsalev1.NewOrderServiceClient(s.conn).PlaceOrder(bearer(t.Context(), tokens[user]), &flashsalev1.PlaceOrderRequest{ProductId: product})
		if status.Code(err) != codes.Unavailable {
			t.Errorf("gRPC order %s = %v, want Unavailable", when, err)
		}
	}

	setAppendOnly(t, rc, "no")
	refused("after CONFIG SET appendonly no", 1)
	setAppendOnly(t, rc, "yes")
	waitFor(t, 15*time.Second, "/readyz to pass with the AOF on again", func() (bool, string) {
		code, body := httpDo(t, "GET", s.baseURL+"/readyz", "", nil)
		return code == http.StatusOK, fmt.Sprintf("%d %v", code, body)
	})
	if r := order(1); r.code != http.StatusAccepted {
		t.Errorf("order with the AOF on again = %d %v, want 202", r.code, r.body)
	}

	rp.kill()
	rp.start("--appendonly", "no")
	refused("after Redis restarted without an AOF", 2)
	waitFor(t, 10*time.Second, "serve to log the restart", func() (bool, string) {
		out := tail(s.proc.out, 200)
		return strings.Contains(out, "Redis restarted"), "no such line yet"
	})
}

// testReconcileAfterRestart: sync mode on a Redis without persistence and
// no periodic reconcile to speak of. Redis is killed and started again,
// empty; serve notices the new run_id and rebuilds the open sale's gate
// state from PostgreSQL by itself, before any call asks for it.
func testReconcileAfterRestart(t *testing.T, bin string) {
	rp := newRedisProc(t)
	rp.start("--appendonly", "no")
	s := startServe(t, bin, map[string]string{
		"DATABASE_URL":               pgtest.NewDatabase(t),
		"REDIS_URL":                  rp.url(),
		"ORDER_MODE":                 "sync",
		"RECONCILE_INTERVAL_SECONDS": "3600",
	})
	product, _, _ := saleOpenNow(t, s.testServer, 10)
	tokens := registerCustomers(t, s.conn, 3)
	for u := range 2 {
		if code, body := httpDo(t, "POST", s.baseURL+"/v1/products/"+product+"/orders", tokens[u], "{}"); code != http.StatusOK {
			t.Fatalf("order of user %d = %d %v, want 200", u, code, body)
		}
	}
	prefix := s.env["REDIS_KEY_PREFIX"] + ":*"

	rp.kill()
	rp.start("--appendonly", "no")
	rc := rawRedis(t, rp.url())
	// Nothing calls the server meanwhile: only a reconcile writes keys.
	waitFor(t, 15*time.Second, "the sale's gate state back in the restarted Redis", func() (bool, string) {
		keys, err := rc.Do(t.Context(), rc.B().Keys().Pattern(prefix).Build()).AsStrSlice()
		return err == nil && len(keys) > 0, fmt.Sprintf("keys %v (%v)", keys, err)
	})
	if out := tail(s.proc.out, 200); !strings.Contains(out, "Redis restarted") {
		t.Errorf("serve did not log the Redis restart; output:\n%s", out)
	}
	if code, body := httpDo(t, "POST", s.baseURL+"/v1/products/"+product+"/orders", tokens[0], "{}"); code != http.StatusConflict {
		t.Errorf("second order of user 0 after the restart = %d %v, want 409 (the reconcile restored the buyers)", code, body)
	}
	if code, body := httpDo(t, "POST", s.baseURL+"/v1/products/"+product+"/orders", tokens[2], "{}"); code != http.StatusOK {
		t.Errorf("order of user 2 after the restart = %d %v, want 200", code, body)
	}
}

// testWaitsForDependencies: serve starts while PostgreSQL is down and Redis
// is not even running. It waits, saying so, through PostgreSQL coming up,
// then Redis starting and answering LOADING while it reads its AOF, and is
// ready once both answer.
func testWaitsForDependencies(t *testing.T, bin string) {
	// PostgreSQL on a port outside the ephemeral range, migrated, then stopped.
	pg := startPrivatePostgres(t)
	pg.stop(t)
	pg.port = freePort(t)
	pg.start(t)
	dbURL := pg.createDatabase(t, "flashsale")
	if out, err := runCommand(exec.Command(bin, "migrate"), childEnv(map[string]string{"DATABASE_URL": dbURL, "AUTH_JWT_SECRET": testSecret})); err != nil {
		t.Fatalf("flashsale migrate: %v\n%s", err, out)
	}
	pg.stop(t)
	// A Redis whose AOF holds enough keys that loading it, slowed by
	// key-load-delay, keeps it answering LOADING for about 4 s: longer than
	// the longest back-off, so serve meets it.
	rp := newRedisProc(t)
	rp.start("--appendonly", "yes")
	fillAOF(t, rp.url(), 4000)
	rp.kill()

	env := startupEnv(t, map[string]string{
		"DATABASE_URL":            dbURL,
		"REDIS_URL":               rp.url(),
		"ORDER_MODE":              "queue",
		"STARTUP_TIMEOUT_SECONDS": "120",
		// Waiting for the AOF is part of the test: no override.
		"ORDERS_QUEUE_ALLOW_VOLATILE": "false",
	})
	p := startChild(t, "serve", childEnv(env), bin, "serve")
	outSays := func(what string, d time.Duration, s string) {
		t.Helper()
		waitFor(t, d, what, func() (bool, string) {
			select {
			case <-p.done:
				t.Fatalf("serve exited while it should wait: %v\n%s", p.err, tail(p.out, 40))
			default:
			}
			return strings.Contains(tail(p.out, 400), s), "not yet"
		})
	}
	outSays("serve to wait for PostgreSQL", 10*time.Second, "waiting for PostgreSQL")
	time.Sleep(2 * time.Second) // a few more attempts
	select {
	case <-p.done:
		t.Fatalf("serve exited with PostgreSQL down: %v\n%s", p.err, tail(p.out, 40))
	default:
	}
	pg.start(t)
	outSays("serve to wait for Redis", 15*time.Second, "waiting for Redis")
	rp.start("--appendonly", "yes", "--key-load-delay", "1000", "--loading-process-events-interval-bytes", "1024")

	base := "http://" + env["HTTP_ADDR"]
	waitFor(t, 60*time.Second, "serve to be ready", func() (bool, string) {
		select {
		case <-p.done:
			t.Fatalf("serve exited: %v\n%s", p.err, tail(p.out, 40))
		default:
		}
		code, err := getCode(base + "/readyz")
		return code == http.StatusOK, fmt.Sprintf("/readyz %d %v", code, err)
	})
	if out := tail(p.out, 400); !strings.Contains(out, "LOADING") {
		t.Errorf("serve never met Redis LOADING its AOF (the test means it to); output:\n%s", out)
	}
	conn, err := grpc.NewClient(env["GRPC_ADDR"], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s := &testServer{conn: conn, baseURL: base}
	product, _, _ := saleOpenNow(t, s, 5)
	tokens := registerCustomers(t, conn, 1)
	if code, body := httpDo(t, "POST", base+"/v1/products/"+product+"/orders", tokens[0], "{}"); code != http.StatusAccepted {
		t.Errorf("order once up = %d %v, want 202", code, body)
	}
}

// testStartupTimeout: with no Redis at all, serve gives up after
// STARTUP_TIMEOUT_SECONDS, exiting non-zero with the cause.
func testStartupTimeout(t *testing.T, bin string) {
	env := startupEnv(t, map[string]string{
		"DATABASE_URL":            pgtest.NewDatabase(t),
		"REDIS_URL":               "redis://127.0.0.1:" + strconv.Itoa(freePort(t)) + "/0",
		"ORDER_MODE":              "sync",
		"STARTUP_TIMEOUT_SECONDS": "2",
	})
	began := time.Now()
	p := startChild(t, "serve", childEnv(env), bin, "serve")
	err := waitExit(t, p, 30*time.Second)
	took := time.Since(began)
	out := tail(p.out, 20)
	if err == nil {
		t.Fatalf("serve without Redis exited 0; output:\n%s", out)
	}
	if took < 2*time.Second {
		t.Errorf("serve gave up after %v, before STARTUP_TIMEOUT_SECONDS=2", took.Round(time.Millisecond))
	}
	for _, want := range []string{"Redis not ready when STARTUP_TIMEOUT_SECONDS ran out", "connection refused", "waiting for Redis"} {
		if !strings.Contains(out, want) {
			t.Errorf("serve's output does not say %q:\n%s", want, out)
		}
	}
}

// startupEnv is startServe's environment (test defaults, free loopback
// ports) with vars over it, for a serve or worker the test watches itself.
func startupEnv(t *testing.T, vars map[string]string) map[string]string {
	t.Helper()
	env := map[string]string{
		"REDIS_KEY_PREFIX":       "fsstart-" + rand.Text()[:12],
		"AUTH_JWT_SECRET":        testSecret,
		"ADMIN_EMAIL":            testAdminEmail,
		"ADMIN_PASSWORD":         testAdminPassword,
		"RL_DISABLED":            "true",
		"LOG_LEVEL":              "warn",
		"SHUTDOWN_DRAIN_SECONDS": "0",
		"HTTP_ADDR":              "127.0.0.1:" + strconv.Itoa(freePort(t)),
		"GRPC_ADDR":              "127.0.0.1:" + strconv.Itoa(freePort(t)),
	}
	maps.Copy(env, vars)
	return env
}

// waitExit waits for the process to exit on its own and returns its exit
// status, failing the test after d.
func waitExit(t *testing.T, c *child, d time.Duration) error {
	t.Helper()
	select {
	case <-c.done:
		return c.err
	case <-time.After(d):
		t.Fatalf("%s still running after %v; output:\n%s", c.name, d, tail(c.out, 40))
		return nil
	}
}

// redisProc is a private redis-server that the test kills and starts again
// on the same port and folder, as a restart would.
type redisProc struct {
	t    *testing.T
	port int
	dir  string
	path string
	proc *child
}

func newRedisProc(t *testing.T) *redisProc {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Missing(t, "redis-server not installed (apt-get install redis-server): %v", err)
	}
	return &redisProc{t: t, port: freePort(t), dir: t.TempDir(), path: path}
}

func (r *redisProc) url() string { return "redis://127.0.0.1:" + strconv.Itoa(r.port) + "/0" }

// start runs redis-server with args and waits until it accepts connections
// (it may still be LOADING).
func (r *redisProc) start(args ...string) {
	r.t.Helper()
	args = append([]string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--dir", r.dir}, args...)
	r.proc = startChild(r.t, "redis-server", childEnv(nil), r.path, args...)
	waitFor(r.t, 10*time.Second, "redis-server to listen", func() (bool, string) {
		conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(r.port))
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, ""
	})
}

// kill sends SIGKILL, as a crash would, and waits for the process to go.
func (r *redisProc) kill() { r.proc.kill() }

// fillAOF writes n keys and rewrites the AOF, so they sit in its RDB base,
// whose loading key-load-delay slows down.
func fillAOF(t *testing.T, url string, n int) {
	t.Helper()
	rc := rawRedis(t, url)
	ctx := t.Context()
	cmds := make(rueidis.Commands, 0, n)
	for i := range n {
		cmds = append(cmds, rc.B().Set().Key("filler:"+strconv.Itoa(i)).Value("x").Build())
	}
	for _, r := range rc.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			t.Fatalf("SET: %v", err)
		}
	}
	if err := rc.Do(ctx, rc.B().Bgrewriteaof().Build()).Error(); err != nil {
		t.Fatalf("BGREWRITEAOF: %v", err)
	}
	waitFor(t, 10*time.Second, "the AOF rewrite", func() (bool, string) {
		s, err := rc.Do(ctx, rc.B().Info().Section("persistence").Build()).ToString()
		return err == nil && strings.Contains(s, "aof_rewrite_in_progress:0") && strings.Contains(s, "aof_rewrite_scheduled:0"),
			fmt.Sprintf("%v", err)
	})
}

func setAppendOnly(t *testing.T, rc rueidis.Client, v string) {
	t.Helper()
	if err := rc.Do(t.Context(), rc.B().ConfigSet().ParameterValue().ParameterValue("appendonly", v).Build()).Error(); err != nil {
		t.Fatalf("CONFIG SET appendonly %s: %v", v, err)
	}
}
