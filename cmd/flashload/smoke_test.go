package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/postgres/pgtest"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/internal/tlstest"
)

// freeAddr returns a loopback address no one listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServer builds ./cmd/flashsale and runs it against databaseURL,
// returning its gRPC and REST addresses once /readyz answers.
func startServer(t *testing.T, databaseURL string) (grpcAddr, httpAddr string) {
	t.Helper()
	return startServerWith(t, databaseURL, nil, nil)
}

// startServerWith is startServer with env ("KEY=value") added to the
// server's environment; with ca set, /readyz is asked over HTTPS trusting it.
func startServerWith(t *testing.T, databaseURL string, env []string, ca *x509.CertPool) (grpcAddr, httpAddr string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "flashsale")
	build := exec.Command("go", "build", "-o", bin, "github.com/flashsale/flashsale/cmd/flashsale")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/flashsale: %v\n%s", err, out)
	}
	grpcAddr, httpAddr = freeAddr(t), freeAddr(t)
	var logs bytes.Buffer
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+databaseURL,
		"REDIS_URL="+testenv.RedisURL(),
		"GRPC_ADDR="+grpcAddr, "HTTP_ADDR="+httpAddr,
		"AUTH_JWT_SECRET="+smokeSecret,
		"ADMIN_EMAIL="+smokeAdmin, "ADMIN_PASSWORD="+smokePassword,
		"ORDER_MODE=direct", "RL_DISABLED=true", "LOG_LEVEL=warn",
		// The harness signs users up at once; let them queue for a hashing
		// slot on a busy box rather than get 503s.
		"AUTH_HASH_WAIT_MS=60000",
	)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	client, readyz := http.DefaultClient, "http://"+httpAddr+"/readyz"
	if ca != nil {
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca}}}
		readyz = "https://" + httpAddr + "/readyz"
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := client.Get(readyz)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return grpcAddr, httpAddr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready after 20s (last error %v); log:\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

const (
	smokeSecret   = "flashload-smoke-test-secret-0123456789abcdef"
	smokeAdmin    = "admin@example.com"
	smokePassword = "admin-password-123"
)

func TestSmoke(t *testing.T) {
	databaseURL := pgtest.NewDatabase(t)
	grpcAddr, httpAddr := startServer(t, databaseURL)
	// A second server on the same database: --target spreads a run over both.
	grpc2, http2 := startServer(t, databaseURL)

	runs := []struct {
		name string
		args []string
	}{
		{"grpc distinct registered", []string{"--transport", "grpc", "--mode", "distinct", "--stock", "20", "--users", "40", "--concurrency", "8"}},
		{"rest distinct minted twice", []string{"--transport", "rest", "--mode", "distinct", "--stock", "30", "--users", "60", "--times", "2", "--concurrency", "8", "--jwt-secret", smokeSecret}},
		{"grpc same-user", []string{"--transport", "grpc", "--mode", "same-user", "--stock", "5", "--duration", "1s", "--concurrency", "8"}},
		{"rest mixed", []string{"--transport", "rest", "--mode", "mixed", "--stock", "10", "--users", "30", "--duration", "1s", "--concurrency", "8", "--jwt-secret", smokeSecret}},
		{"grpc distinct over two servers", []string{"--transport", "grpc", "--mode", "distinct", "--stock", "20", "--users", "41", "--concurrency", "8", "--connections", "3", "--jwt-secret", smokeSecret,
			"--target", grpcAddr, "--target", grpc2}},
		{"rest distinct over two servers", []string{"--transport", "rest", "--mode", "distinct", "--stock", "20", "--users", "41", "--concurrency", "8", "--jwt-secret", smokeSecret,
			"--target", httpAddr, "--target", http2}},
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "summary.json")
			args := append([]string{
				"--grpc", grpcAddr, "--http", httpAddr, "--database-url", databaseURL,
				"--admin-email", smokeAdmin, "--admin-password", smokePassword,
				"--ceiling", "500ms", "--progress", "0", "--out", out,
			}, r.args...)
			before := []int{placeOrders(t, httpAddr), placeOrders(t, http2)}
			var stdout bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := run(ctx, args, &stdout); err != nil {
				t.Fatalf("run: %v\n%s", err, stdout.String())
			}
			t.Log(stdout.String())
			if !strings.Contains(stdout.String(), "invariants: all hold") {
				t.Errorf("report lacks %q:\n%s", "invariants: all hold", stdout.String())
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			var s Summary
			if err := json.Unmarshal(b, &s); err != nil {
				t.Fatalf("summary: %v\n%s", err, b)
			}
			// The shape, as raw JSON keys, so a renamed field is caught.
			var raw map[string]any
			json.Unmarshal(b, &raw)
			for _, k := range []string{"name", "transport", "mode", "ops", "rps", "ceiling", "ratioToCeiling", "clientCpu", "verify", "setup"} {
				if _, ok := raw[k]; !ok {
					t.Errorf("summary lacks key %q", k)
				}
			}
			if !s.Verify.Checked || len(s.Verify.Violations) != 0 {
				t.Errorf("verify = %+v, want checked with no violations", s.Verify)
			}
			if s.Ceiling == nil || s.Ceiling.OK == 0 || s.Ratio <= 0 {
				t.Errorf("ceiling = %+v, ratio %v; want health calls and a positive ratio", s.Ceiling, s.Ratio)
			}
			var order *OpSummary
			for i := range s.Ops {
				if s.Ops[i].Op == opOrder {
					order = &s.Ops[i]
				}
			}
			if order == nil {
				t.Fatalf("ops = %+v, want an order op", s.Ops)
			}
			if order.OK == 0 || order.LatencyMS.P50 <= 0 || order.LatencyMS.Max < order.LatencyMS.P99 {
				t.Errorf("order op = %+v, want successes and ordered latencies", order)
			}
			if got, want := int64(s.Verify.OrdersInDB), order.OK; got != want {
				t.Errorf("orders in db = %d, want %d (acknowledged)", got, want)
			}
			if sum := sumOutcomes(order.Outcomes); sum != int(order.Calls) {
				t.Errorf("outcomes add up to %d, want %d calls: %v", sum, order.Calls, order.Outcomes)
			}
			if strings.Contains(r.name, "two servers") {
				for i, h := range []string{httpAddr, http2} {
					if n := placeOrders(t, h) - before[i]; n < 10 {
						t.Errorf("server %s handled %d PlaceOrder calls of the run: the load was not spread", h, n)
					}
				}
			}
			if s.Mode == "distinct" && s.Verify.UsersTried != s.Users {
				t.Errorf("distinct run tried %d users, want all %d, each once", s.Verify.UsersTried, s.Users)
			}
			if s.Mode == "distinct" && s.Verify.OrdersInDB != s.Stock {
				t.Errorf("distinct run sold %d, want the whole stock %d", s.Verify.OrdersInDB, s.Stock)
			}
			if s.Mode == "same-user" && s.Verify.OrdersInDB != 1 {
				t.Errorf("same-user run sold %d, want 1", s.Verify.OrdersInDB)
			}
			if _, err := os.Stat(strings.TrimSuffix(out, ".json") + ".errors.csv"); err != nil {
				t.Errorf("errors csv: %v", err)
			}
		})
	}
}

// TestSmokeTLS: against a server serving TLS and requiring client
// certificates on gRPC, flashload with --tls-ca, --tls-cert and --tls-key
// sets up, drives orders over gRPC and status reads over HTTPS, and
// checks; without a client certificate it fails at set-up.
func TestSmokeTLS(t *testing.T) {
	databaseURL := pgtest.NewDatabase(t)
	ca := tlstest.NewCA(t)
	server := ca.Issue(t, "server", x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	client := ca.Issue(t, "client", x509.ExtKeyUsageClientAuth)
	grpcAddr, httpAddr := startServerWith(t, databaseURL, []string{
		"TLS_CERT_FILE=" + server.CertFile, "TLS_KEY_FILE=" + server.KeyFile, "TLS_CLIENT_CA_FILE=" + ca.CertFile,
	}, ca.Pool)
	common := []string{
		"--grpc", grpcAddr, "--http", httpAddr, "--database-url", databaseURL,
		"--admin-email", smokeAdmin, "--admin-password", smokePassword, "--jwt-secret", smokeSecret,
		"--ceiling", "300ms", "--progress", "0", "--tls-ca", ca.CertFile,
	}
	clientCert := []string{"--tls-cert", client.CertFile, "--tls-key", client.KeyFile}
	for _, r := range []struct {
		name string
		args []string
		op   string
	}{
		{"grpc distinct", []string{"--transport", "grpc", "--mode", "distinct", "--stock", "10", "--users", "20", "--concurrency", "4"}, opOrder},
		{"rest status", []string{"--transport", "rest", "--mode", "status", "--duration", "500ms", "--concurrency", "4"}, opStatus},
	} {
		t.Run(r.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "summary.json")
			var stdout bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			args := append(append(append([]string{"--out", out}, common...), clientCert...), r.args...)
			if err := run(ctx, args, &stdout); err != nil {
				t.Fatalf("run: %v\n%s", err, stdout.String())
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			var s Summary
			if err := json.Unmarshal(b, &s); err != nil {
				t.Fatalf("summary: %v\n%s", err, b)
			}
			if !s.Verify.Checked || len(s.Verify.Violations) != 0 {
				t.Errorf("verify = %+v, want checked with no violations", s.Verify)
			}
			if s.Ceiling == nil || s.Ceiling.OK == 0 {
				t.Errorf("ceiling = %+v, want health checks answered over TLS", s.Ceiling)
			}
			for _, op := range s.Ops {
				if op.Op == r.op && (op.OK == 0 || op.TransportErr != 0) {
					t.Errorf("%s op = %+v, want successes and no transport errors", op.Op, op)
				}
			}
		})
	}
	t.Run("no client certificate", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		args := append(append([]string{}, common...), "--transport", "grpc", "--mode", "distinct", "--stock", "1", "--users", "2", "--timeout", "5s")
		// The refusal reaches the client as the TLS alert "certificate
		// required" or, when the server closed first, as a broken pipe.
		err := run(ctx, args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "code = Unavailable") {
			t.Errorf("run without a client certificate: %v, want set-up refused with Unavailable", err)
		}
	})
}

func sumOutcomes(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// placeOrders is how many PlaceOrder calls the server at httpAddr has
// handled, from its /metrics.
func placeOrders(t *testing.T, httpAddr string) int {
	t.Helper()
	res, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, "grpc_server_handled_total{") && strings.Contains(line, `grpc_method="PlaceOrder"`) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			n += int(v)
		}
	}
	return n
}
