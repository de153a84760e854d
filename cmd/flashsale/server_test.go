package main

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/postgres/pgtest"
	"github.com/flashsale/flashsale/internal/redis"
	"github.com/flashsale/flashsale/internal/testenv"
)

const (
	testAdminEmail    = "admin@example.com"
	testAdminPassword = "admin-password-123"
	testSecret        = "test-secret-test-secret-test-secret-0123"
)

// testServer is a whole flashsale server on real listeners and a throwaway database.
type testServer struct {
	conn    *grpc.ClientConn // to the gRPC listener
	baseURL string           // of the REST listener
	cfg     config.Config
}

// startServer runs a server in direct mode unless env ("KEY=value" pairs)
// says otherwise. Each server gets its own database and its own Redis key
// prefix, so tests share nothing.
func startServer(t *testing.T, env ...string) *testServer {
	t.Helper()
	return startTracedServer(t, nil, env...)
}

// startTracedServer is startServer with the server's calls, queries and
// Redis commands traced to tp (nil: not traced).
func startTracedServer(t *testing.T, tp trace.TracerProvider, env ...string) *testServer {
	t.Helper()
	environ := map[string]string{
		"DATABASE_URL":     pgtest.NewDatabase(t),
		"REDIS_URL":        testRedisURL(t),
		"REDIS_KEY_PREFIX": "fstest-" + rand.Text()[:12],
		"AUTH_JWT_SECRET":  testSecret,
		"ADMIN_EMAIL":      testAdminEmail,
		"ADMIN_PASSWORD":   testAdminPassword,
		"ORDER_MODE":       "direct",
		"RL_DISABLED":      "true",
		// Tests sign up dozens of users at once, and a hash under -race
		// takes ~100 ms: let them queue for a slot rather than get 503s.
		"AUTH_HASH_WAIT_MS": "60000",
		// The shared test Redis keeps no AOF; startup_test.go tests the refusal.
		"ORDERS_QUEUE_ALLOW_VOLATILE": "true",
		// Stopped when the test ends, with nothing to drain for.
		"SHUTDOWN_DRAIN_SECONDS": "0",
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		environ[k] = v
	}
	cfg, err := config.LoadFrom(environ)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	go func() {
		a, err := app.New(ctx, cfg, log, app.WithListeners(grpcLis, httpLis), app.WithTracerProvider(tp))
		if err != nil {
			done <- err
			return
		}
		done <- a.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("server did not stop")
		}
	})
	conn, err := grpc.NewClient(grpcLis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ts := &testServer{conn: conn, baseURL: "http://" + httpLis.Addr().String(), cfg: cfg}
	ts.waitReady(t)
	return ts
}

// waitReady polls /readyz: the server migrates nothing, but it connects and
// seeds the admin before it serves.
func (s *testServer) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if code, _ := httpDo(t, "GET", s.baseURL+"/readyz", "", nil); code == 200 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("server not ready after 20s")
}

// testRedisURL is TEST_REDIS_URL (default the local Redis); the test is
// skipped when it does not answer, unless CI=true.
func testRedisURL(t *testing.T) string {
	t.Helper()
	u := testenv.RedisURL()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := redis.New(ctx, u)
	if err != nil {
		testenv.Missing(t, "redis at %s unreachable; start it or set TEST_REDIS_URL: %v", u, err)
	}
	c.Close()
	return u
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
