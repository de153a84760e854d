package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
	"github.com/flashsale/flashsale/internal/postgres/pgtest"
	"github.com/flashsale/flashsale/internal/testenv"
)

// restWatch is an open REST WatchSaleStatus stream, or the refusal.
type restWatch struct {
	code   int
	header http.Header
	body   map[string]any // the error body when refused
	close  func()
}

// openRESTWatch opens GET .../sale-status:watch as client from (the test
// servers trust the loopback peer as a proxy) and, when it is accepted,
// reads its first status.
func openRESTWatch(t *testing.T, client *http.Client, baseURL, product, from string) restWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", baseURL+"/v1/products/"+product+"/sale-status:watch", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", from)
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("open watch from %s: %v", from, err)
	}
	w := restWatch{code: resp.StatusCode, header: resp.Header, close: func() { cancel(); resp.Body.Close() }}
	lines := bufio.NewScanner(resp.Body)
	if !lines.Scan() {
		w.close()
		t.Fatalf("watch from %s (%d) ended before its first line: %v", from, resp.StatusCode, lines.Err())
	}
	if w.code != 200 {
		_ = json.Unmarshal(lines.Bytes(), &w.body)
		w.close()
	}
	return w
}

// openGRPCWatch opens WatchSaleStatus as client from and returns the error
// of its first message (nil: the stream is open) and a func to close it.
func openGRPCWatch(t *testing.T, conn *grpc.ClientConn, product, from string) (error, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if from != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "x-forwarded-for", from)
	}
	stream, err := flashsalev1.NewFlashSaleServiceClient(conn).WatchSaleStatus(ctx, &flashsalev1.WatchSaleStatusRequest{ProductId: product})
	if err == nil {
		_, err = stream.Recv()
	}
	if err != nil {
		cancel()
	}
	return err, cancel
}

func wantTooManyStreams(t *testing.T, what string, err error) {
	t.Helper()
	st := status.Convert(err)
	var reason string
	var retry bool
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			reason = d.GetReason()
		case *errdetails.RetryInfo:
			retry = d.GetRetryDelay().AsDuration() > 0
		}
	}
	if st.Code() != codes.ResourceExhausted || reason != "TOO_MANY_STREAMS" || !retry {
		t.Errorf("%s = %v (reason %q, RetryInfo %v), want ResourceExhausted TOO_MANY_STREAMS with RetryInfo", what, err, reason, retry)
	}
}

// TestWatchCaps: open WatchSaleStatus streams are capped per client
// address and per process (ResourceExhausted, REST 429 with Retry-After,
// reason TOO_MANY_STREAMS); a closed stream frees its place.
func TestWatchCaps(t *testing.T) {
	s := startServer(t, "ORDER_MODE=sync", "TRUSTED_PROXIES=127.0.0.1",
		"WATCH_MAX_STREAMS_PER_IP=3", "WATCH_MAX_STREAMS=5")
	product, _, _ := saleOpenNow(t, s, 10)
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)

	var open []func()
	t.Cleanup(func() {
		for _, c := range open {
			c()
		}
	})
	for i := range 3 {
		w := openRESTWatch(t, client, s.baseURL, product, "198.51.100.1")
		if w.code != 200 {
			t.Fatalf("stream %d from 198.51.100.1 = %d %v, want 200", i+1, w.code, w.body)
		}
		open = append(open, w.close)
	}
	// A stream's error comes as the one line {"error": {code, message, details}}.
	w := openRESTWatch(t, client, s.baseURL, product, "198.51.100.1")
	errBody, _ := w.body["error"].(map[string]any)
	if w.code != 429 || w.header.Get("Retry-After") == "" || reasonOf(errBody) != "TOO_MANY_STREAMS" {
		t.Errorf("4th REST stream from one address = %d %v (Retry-After %q), want 429 TOO_MANY_STREAMS with Retry-After",
			w.code, w.body, w.header.Get("Retry-After"))
	}
	err, _ := openGRPCWatch(t, s.conn, product, "198.51.100.1")
	wantTooManyStreams(t, "4th stream from one address over gRPC", err)

	for i := range 2 {
		err, closeIt := openGRPCWatch(t, s.conn, product, "198.51.100.2")
		if err != nil {
			t.Fatalf("gRPC stream %d from 198.51.100.2 = %v, want it open", i+1, err)
		}
		open = append(open, closeIt)
	}
	err, _ = openGRPCWatch(t, s.conn, product, "198.51.100.3")
	wantTooManyStreams(t, "6th stream on a server capped at 5", err)

	// Closing a stream frees its place, once the server has seen it go.
	open[0]()
	waitFor(t, 10*time.Second, "a freed place", func() (bool, string) {
		err, closeIt := openGRPCWatch(t, s.conn, product, "198.51.100.3")
		if err == nil {
			open = append(open, closeIt)
		}
		return err == nil, fmt.Sprint(err)
	})
}

// TestWatchOpensRateLimited: opening a stream takes a token from the
// caller's per-IP bucket, as a unary call does.
func TestWatchOpensRateLimited(t *testing.T) {
	s := startServer(t, "ORDER_MODE=sync", "RL_DISABLED=false", "TRUSTED_PROXIES=127.0.0.1",
		"RL_IP_CAPACITY=5", "RL_IP_REFILL=0.01")
	product, _, _ := saleOpenNow(t, s, 10)
	var opened int
	for range 10 {
		err, closeIt := openGRPCWatch(t, s.conn, product, "198.51.100.7")
		if err == nil {
			opened++
			closeIt()
			continue
		}
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("open = %v, want it open or ResourceExhausted", err)
		}
	}
	if opened != 5 {
		t.Errorf("opened %d of 10 streams in a row from a bucket of 5, want 5", opened)
	}
}

// TestWatchThousandStreams measures a real `flashsale serve` holding 1,000
// WatchSaleStatus streams of one sale, over gRPC (one connection) and then
// over REST (a connection each): goroutines, resident memory and CPU, and
// how often the sale status was read meanwhile. One poller per sale feeds
// every stream of it, so in 5 s the status is read a few times, not the
// 10,000 times of a poll per stream every 500 ms; that is asserted, the
// rest is logged.
func TestWatchThousandStreams(t *testing.T) {
	testenv.Long(t, "runs a real server with 2,000 streams")
	const streams = 1000
	bin := buildFlashsale(t)
	s := startServe(t, bin, map[string]string{
		"DATABASE_URL":    pgtest.NewDatabase(t),
		"REDIS_URL":       testRedisURL(t),
		"TRUSTED_PROXIES": "127.0.0.1",
	})
	product, _, _ := saleOpenNow(t, s.testServer, 10)
	pid := s.proc.cmd.Process.Pid
	from := func(i int) string { return fmt.Sprintf("10.0.%d.%d", i>>8, i&255) } // under the per-IP cap
	lookups := func() float64 {
		return metricValue(t, s.baseURL, `flashsale_sale_status_lookups_total{result="hit"}`) +
			metricValue(t, s.baseURL, `flashsale_sale_status_lookups_total{result="miss"}`)
	}
	goroutines := func() int { return int(metricValue(t, s.baseURL, "go_goroutines")) }
	goMemory := func() int64 { // heap and stacks in use
		return int64(metricValue(t, s.baseURL, "go_memstats_heap_inuse_bytes") + metricValue(t, s.baseURL, "go_memstats_stack_inuse_bytes"))
	}
	baseG, baseRSS, baseMem := goroutines(), procStatus(t, pid, "VmRSS"), goMemory()

	measure := func(transport string, open func(i int) func()) {
		closers := make([]func(), streams)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 50)
		for i := range streams {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				closers[i] = open(i)
			})
		}
		wg.Wait()
		g, rss, mem := goroutines(), procStatus(t, pid, "VmRSS"), goMemory()
		l0, cpu0, t0 := lookups(), cpuTime(t, pid), time.Now()
		time.Sleep(5 * time.Second)
		reads, cpu := lookups()-l0, cpuTime(t, pid)-cpu0
		t.Logf("%s, %d streams: goroutines %d (%d idle, %.1f a stream); Go heap+stacks in use %d MiB (%d MiB idle, %.1f KiB a stream); RSS %d MiB (%d MiB idle); in 5 s: %.0f status reads, %.1f%% of a core",
			transport, streams, g, baseG, float64(g-baseG)/streams, mem>>20, baseMem>>20, float64(mem-baseMem)/1024/streams,
			rss>>20, baseRSS>>20, reads, 100*cpu.Seconds()/time.Since(t0).Seconds())
		if reads > 100 {
			t.Errorf("%s: %.0f sale-status reads in 5 s for %d streams of one sale, want a few (one poller per sale)", transport, reads, streams)
		}
		for _, c := range closers {
			c()
		}
		waitFor(t, 30*time.Second, "the streams to close", func() (bool, string) {
			g := goroutines()
			return g < baseG+50, fmt.Sprintf("%d goroutines", g)
		})
	}
	measure("gRPC", func(i int) func() {
		err, closeIt := openGRPCWatch(t, s.conn, product, from(i))
		if err != nil {
			t.Fatalf("gRPC stream %d: %v", i, err)
		}
		return closeIt
	})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1}}
	measure("REST", func(i int) func() {
		w := openRESTWatch(t, client, s.baseURL, product, from(i))
		if w.code != 200 {
			t.Fatalf("REST stream %d = %d %v", i, w.code, w.body)
		}
		return w.close
	})
}

// procStatus is a size field (VmRSS, VmHWM) of /proc/<pid>/status, in bytes.
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		testenv.Missing(t, "no /proc to read the server's memory from: %v", err)
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s line %q: %v", field, line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// cpuTime is the user plus system CPU time process pid has used.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		testenv.Missing(t, "no /proc to read the server's CPU time from: %v", err)
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}
