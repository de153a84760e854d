package app_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/postgres/pgtest"
	"github.com/flashsale/flashsale/internal/redis"
	"github.com/flashsale/flashsale/internal/testenv"
)

// testConfig is a serve configuration over a throwaway database and a key
// prefix of the test's own, with env ("KEY": "value") over it.
func testConfig(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	redisURL := testenv.RedisURL()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc, err := redis.New(ctx, redisURL)
	if err != nil {
		testenv.Missing(t, "redis at %s unreachable; start it or set TEST_REDIS_URL: %v", redisURL, err)
	}
	rc.Close()
	environ := map[string]string{
		"DATABASE_URL":     pgtest.NewDatabase(t),
		"REDIS_URL":        redisURL,
		"REDIS_KEY_PREFIX": "fsapp-" + rand.Text()[:12],
		"AUTH_JWT_SECRET":  "test-secret-test-secret-test-secret-0123",
		"ADMIN_EMAIL":      "admin@example.com",
		"ADMIN_PASSWORD":   "admin-password-123",
		"RL_DISABLED":      "true",
		// The shared test Redis keeps no AOF.
		"ORDERS_QUEUE_ALLOW_VOLATILE": "true",
		"SHUTDOWN_TIMEOUT_SECONDS":    "5",
		"SHUTDOWN_DRAIN_SECONDS":      "0",
	}
	for k, v := range env {
		environ[k] = v
	}
	cfg, err := config.LoadFrom(environ)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// listen is a pair of loopback listeners for gRPC and HTTP.
func listen(t *testing.T) (grpcLis, httpLis net.Listener) {
	t.Helper()
	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpLis, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return grpcLis, httpLis
}

func testLog(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	return slog.New(slog.DiscardHandler)
}

// running is an App started by start, and how to stop it.
type running struct {
	baseURL  string
	grpcAddr string
	stop     context.CancelFunc
	done     chan struct{} // closed when Run has returned
	err      error         // Run's result, set before done is closed
}

// wait waits up to d for Run to return, and returns its error.
func (r *running) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(d):
		t.Fatalf("Run still running %v after its context ended", d)
		return nil
	}
}

// start builds a serve App, applies hooks to it, and runs it until the
// test stops it (or ends).
func start(t *testing.T, cfg config.Config, hooks ...func(*app.App)) *running {
	t.Helper()
	return serve(t, cfg, "http", &http.Client{Timeout: 5 * time.Second}, hooks...)
}

// serve is start over scheme (http, or https when cfg serves TLS), waiting
// for /readyz with client.
func serve(t *testing.T, cfg config.Config, scheme string, client *http.Client, hooks ...func(*app.App)) *running {
	t.Helper()
	grpcLis, httpLis := listen(t)
	a, err := app.New(t.Context(), cfg, testLog(t), app.WithListeners(grpcLis, httpLis))
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	for _, h := range hooks {
		h(a)
	}
	ctx, stop := context.WithCancel(context.Background())
	r := &running{baseURL: scheme + "://" + httpLis.Addr().String(), grpcAddr: grpcLis.Addr().String(), stop: stop, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = a.Run(ctx)
	}()
	t.Cleanup(func() {
		stop()
		<-r.done
	})
	waitFor(t, 10*time.Second, "/readyz 200 over "+scheme, func() bool {
		resp, err := client.Get(r.baseURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return r
}

func getCode(url string) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ownGoroutines are the stacks of running goroutines that are in this
// module's code, other than the caller's, the test's, a task's that has
// returned from its function and told so (it is only leaving), and
// rueidis's connection readers (the library's own, which Close does not
// wait for; one may still be handing the near cache an invalidation).
func ownGoroutines() []string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var own []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		lines := strings.Split(g, "\n")
		leaving := len(lines) > 1 && strings.HasPrefix(lines[1], "github.com/flashsale/flashsale/internal/app.(*App).start.func1(")
		library := strings.Contains(g, "created by github.com/redis/rueidis.")
		if i > 0 && !leaving && !library && strings.Contains(g, "github.com/flashsale/flashsale/internal/") && !strings.Contains(g, "internal/app_test.") {
			own = append(own, g)
		}
	}
	return own
}

// TestRunJoinsEveryGoroutine: by the time the App closes its store, every
// goroutine it started, or that its parts started, has ended: the user
// directory and its heartbeat, the reconcile loop, the Redis watcher, the
// queue workers, the batcher, the servers and their handlers were all
// stopped and waited for. (The store's own lookup batcher, which closing
// the store stops, is the one exception.) Each task here is slow to end,
// so one that is stopped but not waited for is still running. Rate limits
// are on, so the per-IP limit reports to Redis (sync and queue modes).
func TestRunJoinsEveryGoroutine(t *testing.T) {
	for _, mode := range []string{"direct", "sync", "queue"} {
		t.Run(mode, func(t *testing.T) {
			var mu sync.Mutex
			var ended, left []string
			r := start(t, testConfig(t, map[string]string{"ORDER_MODE": mode, "ORDERS_WORKER_CONCURRENCY": "2", "RL_DISABLED": "false"}), func(a *app.App) {
				app.OnTaskEnded(a, func(name string) {
					time.Sleep(100 * time.Millisecond)
					mu.Lock()
					ended = append(ended, name)
					mu.Unlock()
				})
				app.BeforeStoreClose(a, func() {
					for _, g := range ownGoroutines() {
						if !strings.Contains(g, "postgres.(*userLoader).run") {
							left = append(left, g)
						}
					}
				})
			})
			// Let the background work get going: the directory follows
			// the users, the workers read the streams.
			time.Sleep(300 * time.Millisecond)
			r.stop()
			if err := r.wait(t, 20*time.Second); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if len(left) > 0 {
				t.Errorf("%d goroutines still running as the store closed:\n\n%s", len(left), strings.Join(left, "\n\n"))
			}
			want := []string{"order workers", "redis watcher", "reconcile loop", "ip limit sync", "user directory"}
			switch mode {
			case "direct":
				want = want[4:]
			case "sync":
				want = want[1:]
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(ended, want) {
				t.Errorf("tasks ended = %q, want %q (newest first, each before the next stops)", ended, want)
			}
		})
	}
}
