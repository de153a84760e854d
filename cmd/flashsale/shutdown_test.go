package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
	"github.com/flashsale/flashsale/internal/postgres/pgtest"
	"github.com/flashsale/flashsale/internal/testenv"
)

// TestShutdownUnderLoad sends SIGTERM to a real `flashsale serve` while
// buyers place orders and readers poll the sale's status, over gRPC and
// REST, retrying what the server answers Unavailable. It checks that
// /readyz fails at once while the server goes on answering for the drain,
// that no call gets an answer other than its own or Unavailable (no
// Internal, no cut-off call: a connection refused once the server is gone
// is Unavailable too), that the process exits 0, and that every order
// acknowledged, CONFIRMED or PENDING, is in PostgreSQL, and nothing else.
func TestShutdownUnderLoad(t *testing.T) {
	testenv.Long(t, "runs real processes")
	bin := buildFlashsale(t)
	for _, mode := range []string{"sync", "queue"} {
		t.Run(mode, func(t *testing.T) { testShutdownUnderLoad(t, bin, mode) })
	}
}

// Timing of the shutdown test: buyers start one every buyerEvery, the
// SIGTERM comes termAfter the first, and the server drains for drain.
const (
	shutdownBuyers = 150
	buyerEvery     = 25 * time.Millisecond
	termAfter      = time.Second
	drain          = 2 * time.Second
	// listenerSlack is how early before the drain's end the test takes a
	// refused connection as the server having stopped accepting.
	listenerSlack = 300 * time.Millisecond
)

// call is one answer a client saw, and when.
type call struct {
	at   time.Time
	what string // the RPC or route
	code codes.Code
	http int   // REST: the status, 0 on a transport error
	err  error // REST: the transport error
}

func testShutdownUnderLoad(t *testing.T, bin, mode string) {
	dbURL := pgtest.NewDatabase(t)
	vars := map[string]string{
		"DATABASE_URL":             dbURL,
		"REDIS_URL":                testRedisURL(t),
		"ORDER_MODE":               mode,
		"SHUTDOWN_DRAIN_SECONDS":   fmt.Sprint(int(drain.Seconds())),
		"SHUTDOWN_TIMEOUT_SECONDS": "10",
	}
	s := startServe(t, bin, vars)
	db := openPool(t, dbURL)
	product, saleID, _ := saleOpenNow(t, s.testServer, 100000)
	tokens := registerCustomers(t, s.conn, shutdownBuyers)

	var mu sync.Mutex
	var calls []call
	var acked []string
	var ackedAt []time.Time
	record := func(c call) {
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
	}
	ctx, stopLoad := context.WithCancel(t.Context())
	defer stopLoad()
	var load sync.WaitGroup
	start := time.Now()

	// Buyers: each places its order once the server answers something other
	// than Unavailable, retrying every 50 ms until the load stops.
	orders := flashsalev1.NewOrderServiceClient(s.conn)
	for i, token := range tokens {
		load.Go(func() {
			select {
			case <-time.After(time.Duration(i) * buyerEvery):
			case <-ctx.Done():
				return
			}
			for ctx.Err() == nil {
				cctx, cancel := context.WithTimeout(bearer(ctx, token), 15*time.Second)
				r, err := orders.PlaceOrder(cctx, &flashsalev1.PlaceOrderRequest{ProductId: product})
				cancel()
				if ctx.Err() != nil {
					return
				}
				record(call{at: time.Now(), what: "PlaceOrder", code: status.Code(err)})
				if status.Code(err) != codes.Unavailable {
					if err == nil {
						mu.Lock()
						acked = append(acked, r.GetOrder().GetId())
						ackedAt = append(ackedAt, time.Now())
						mu.Unlock()
					}
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	// Readers: the sale's status, over gRPC and REST, without pause.
	sales := flashsalev1.NewFlashSaleServiceClient(s.conn)
	rest := &http.Client{Timeout: 15 * time.Second}
	for range 2 {
		load.Go(func() {
			for ctx.Err() == nil {
				cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				_, err := sales.GetSaleStatus(cctx, &flashsalev1.GetSaleStatusRequest{ProductId: product})
				cancel()
				if ctx.Err() != nil {
					return
				}
				record(call{at: time.Now(), what: "GetSaleStatus", code: status.Code(err)})
				time.Sleep(10 * time.Millisecond)
			}
		})
		load.Go(func() {
			for ctx.Err() == nil {
				req, err := http.NewRequestWithContext(ctx, "GET", s.baseURL+"/v1/products/"+product+"/sale-status", nil)
				if err != nil {
					t.Error(err)
					return
				}
				c := call{what: "REST sale-status"}
				resp, err := rest.Do(req)
				if ctx.Err() != nil {
					return
				}
				c.at, c.err = time.Now(), err
				if err == nil {
					c.http = resp.StatusCode
					resp.Body.Close()
				}
				record(c)
				time.Sleep(10 * time.Millisecond)
			}
		})
	}

	time.Sleep(time.Until(start.Add(termAfter)))
	if err := s.proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	termAt := time.Now()
	// /readyz fails at once, while the server still answers.
	var readyzFailed time.Time
	waitFor(t, time.Second, "/readyz to fail after SIGTERM", func() (bool, string) {
		code, err := getCode(s.baseURL + "/readyz")
		if code == http.StatusServiceUnavailable {
			readyzFailed = time.Now()
		}
		return code == http.StatusServiceUnavailable, fmt.Sprintf("%d %v", code, err)
	})
	if err := waitExit(t, s.proc, drain+15*time.Second); err != nil {
		t.Errorf("serve exited with %v after SIGTERM, want status 0", err)
	}
	exited := time.Now()
	time.Sleep(300 * time.Millisecond) // the clients meet the closed ports
	stopLoad()
	load.Wait()

	// Every answer is the call's own or Unavailable, and Unavailable (or a
	// refused connection) only once the server stopped accepting.
	stoppedAccepting := termAt.Add(drain - listenerSlack)
	var servedInDrain, refused int
	for _, c := range calls {
		switch {
		case c.what == "REST sale-status" && c.err != nil:
			refused++
			if c.at.Before(stoppedAccepting) {
				t.Errorf("%s at %v (SIGTERM at %v): %v; the server should still accept during the drain",
					c.what, c.at.Sub(start), termAt.Sub(start), c.err)
			}
		case c.what == "REST sale-status" && c.http != http.StatusOK:
			t.Errorf("%s at %v = %d, want 200", c.what, c.at.Sub(start), c.http)
		case c.code == codes.Unavailable:
			refused++
			if c.at.Before(stoppedAccepting) {
				t.Errorf("%s at %v (SIGTERM at %v) = Unavailable; the server should still serve during the drain",
					c.what, c.at.Sub(start), termAt.Sub(start))
			}
		case c.code != codes.OK:
			t.Errorf("%s at %v = %v, want OK or Unavailable", c.what, c.at.Sub(start), c.code)
		case c.at.After(readyzFailed) && c.at.Before(exited):
			servedInDrain++
		}
	}
	if servedInDrain == 0 {
		t.Errorf("no call answered between /readyz failing and the exit; the drain served nothing")
	}
	ackedAfterTerm := 0
	for _, at := range ackedAt {
		if at.After(termAt) {
			ackedAfterTerm++
		}
	}
	if ackedAfterTerm == 0 {
		t.Errorf("no order acknowledged after SIGTERM; the load did not span the shutdown")
	}
	if refused == 0 {
		t.Errorf("no client met the stopped server; the load ended before it")
	}
	t.Logf("%d calls: %d answered during the drain, %d Unavailable or refused after; %d orders acknowledged, %d after SIGTERM",
		len(calls), servedInDrain, refused, len(acked), ackedAfterTerm)

	// Queue mode acknowledged orders that may still be in the stream: a
	// worker writes them.
	if mode == "queue" {
		env := maps.Clone(s.env)
		env["ORDERS_WORKER_CONCURRENCY"] = "1"
		startChild(t, "worker", childEnv(env), bin, "worker")
	}
	waitOrders(t, db, saleID, len(acked))
	checkAckedStored(t, db, saleID, acked)
}
