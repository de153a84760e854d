package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/postgres/pgtest"
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

func startServer(t *testing.T) *testServer {
	t.Helper()
	cfg, err := config.LoadFrom(map[string]string{
		"DATABASE_URL":    pgtest.NewDatabase(t),
		"AUTH_JWT_SECRET": testSecret,
		"ADMIN_EMAIL":     testAdminEmail,
		"ADMIN_PASSWORD":  testAdminPassword,
		"ORDER_MODE":      "direct",
	})
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
	go func() { done <- runServer(ctx, cfg, log, grpcLis, httpLis) }()
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

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
