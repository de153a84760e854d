package grpcapi

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
	"github.com/flashsale/flashsale/internal/redis"
	"github.com/flashsale/flashsale/internal/redis/clustertest"
	"github.com/flashsale/flashsale/internal/testenv"
)

// sharedLimiter is a fleet's shared per-IP buckets on the Redis at redisURL,
// under prefix, as one process sees them: each call makes a connection of
// its own, as each process has. The buckets expire by themselves, a few
// seconds after the test.
func sharedLimiter(t *testing.T, redisURL, prefix string, capacity int, refill float64) *redis.Limiter {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := redis.New(ctx, redisURL, redis.WithKeyPrefix(prefix))
	if err != nil {
		testenv.Missing(t, "redis not reachable at %s (set TEST_REDIS_URL): %v", redisURL, err)
	}
	t.Cleanup(c.Close)
	l, err := redis.NewLimiter(c, "ip", capacity, refill)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func testPrefix() string { return "fstest-ip-" + rand.Text()[:12] }

// TestIPBucketsLocal: not shared, each address has a bucket of its own in
// this process, as before the buckets could be shared.
func TestIPBucketsLocal(t *testing.T) {
	b := NewIPBuckets(3, 0.01, nil)
	now := time.Now()
	for i := range 3 {
		if ok, _ := b.take("192.0.2.1", now); !ok {
			t.Fatalf("call %d of a bucket of 3 refused", i+1)
		}
	}
	if ok, wait := b.take("192.0.2.1", now); ok || wait < 99*time.Second {
		t.Errorf("4th call = %v, wait %v; want refused for about 100s (1 token at 0.01/s)", ok, wait)
	}
	if ok, _ := b.take("192.0.2.2", now); !ok {
		t.Error("another address refused")
	}
	if n := len(b.dirty); n != 0 {
		t.Errorf("%d buckets listed for a report, with nothing to report to", n)
	}
	if c := b.Collectors(); len(c) != 0 {
		t.Errorf("unshared buckets export %d metrics, want none", len(c))
	}
}

// TestIPBucketsFleetRefuses: an address that one process has used the
// shared bucket up for is refused by another after its next report, with
// ResourceExhausted and a RetryInfo of how long the shared bucket takes to
// hold a token again; the other process had let one call through, not
// knowing, and its bucket here does not hand out the burst it still held.
func TestIPBucketsFleetRefuses(t *testing.T) {
	prefix := testPrefix()
	share := func() *IPBuckets {
		return NewIPBuckets(5, 0.5, &IPSharing{Buckets: sharedLimiter(t, testenv.RedisURL(), prefix, 5, 0.5), Every: time.Hour})
	}
	p1, p2 := share(), share()
	const ip = "192.0.2.7"
	for i := range 5 {
		if ok, _ := p1.take(ip, time.Now()); !ok {
			t.Fatalf("process 1: call %d of 5 refused", i+1)
		}
	}
	p1.sync(t.Context())
	if ok, _ := p2.take(ip, time.Now()); !ok {
		t.Fatal("process 2: first call refused before it heard from Redis")
	}
	p2.sync(t.Context())

	l := newLimiter(Limits{GlobalCapacity: 100, GlobalRefill: 100, IP: p2}, nil, slog.New(slog.DiscardHandler), newRefusals())
	ctx := peer.NewContext(t.Context(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 1}})
	ok := func(context.Context, any) (any, error) { return "ok", nil }
	_, err := l.unary(ctx, nil, &grpc.UnaryServerInfo{FullMethod: flashsalev1.FlashSaleService_ListFlashSales_FullMethodName}, ok)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("process 2, after its report: call = %v, want ResourceExhausted", err)
	}
	// 6 taken from 5: 2 tokens short of one whole, 4 s at 0.5/s.
	if d := retryDelay(t, err); d < 3*time.Second || d > 4*time.Second {
		t.Errorf("RetryInfo delay = %v, want about 4s (the shared bucket's wait)", d)
	}
	// The first process hears it too, with its next report.
	p1.take(ip, time.Now()) // refused by its own empty bucket: nothing to report
	if ok, wait := p1.take("192.0.2.8", time.Now()); !ok || wait != 0 {
		t.Fatal("process 1: another address refused")
	}
	p1.sync(t.Context())
	if ok, _ := p1.take("192.0.2.8", time.Now()); !ok {
		t.Error("process 1: another address refused after a report")
	}
}

func retryDelay(t *testing.T, err error) time.Duration {
	t.Helper()
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	t.Fatalf("%v carries no RetryInfo", err)
	return 0
}

// How long testFleet hammers how many processes, and the limit it sets.
const (
	fleetProcesses = 3
	fleetCapacity  = 20
	fleetRefill    = 100.0 // a second
	fleetEvery     = 100 * time.Millisecond
	fleetFor       = 2 * time.Second
)

// TestIPBucketsFleet: three processes hammered at once from one address
// let it through at about the rate of one bucket, not three times it; each
// of two addresses gets that, on its own.
func TestIPBucketsFleet(t *testing.T) {
	testFleet(t, testenv.RedisURL(), testPrefix(), []string{"192.0.2.10", "2001:db8:1::/64"})
}

// TestIPBucketsFleetCluster: the same on a private Redis Cluster, with
// addresses on each of its three masters, reported in one pipeline.
func TestIPBucketsFleetCluster(t *testing.T) {
	testenv.Long(t, "starts a six-node Redis Cluster")
	c := clustertest.Start(t)
	prefix := testPrefix()
	var ips []string
	masters := map[string]bool{}
	for i := 1; len(masters) < 3; i++ {
		if i > 255 {
			t.Fatalf("no addresses on three masters: %v", masters)
		}
		ip := fmt.Sprintf("198.51.100.%d", i)
		m, err := c.MasterOf(t.Context(), redis.Slot(prefix+":rl:ip:"+ip))
		if err != nil {
			t.Fatal(err)
		}
		if !masters[m.Addr()] {
			masters[m.Addr()] = true
			ips = append(ips, ip)
		}
	}
	testFleet(t, c.URL(), prefix, ips)
}

// testFleet hammers fleetProcesses IPBuckets sharing buckets in the Redis
// at redisURL, each from every address in ips at once, for fleetFor, and checks
// what each address got through: no more than one bucket's worth over the
// time plus the documented overshoot, N × (capacity + refill × interval),
// and not much less than the bucket's worth (the limit does not refuse
// what the fleet has room for).
func testFleet(t *testing.T, redisURL, prefix string, ips []string) {
	ctx, stop := context.WithCancel(t.Context())
	var runs sync.WaitGroup
	var procs []*IPBuckets
	for range fleetProcesses {
		p := NewIPBuckets(fleetCapacity, fleetRefill, &IPSharing{
			Buckets: sharedLimiter(t, redisURL, prefix, fleetCapacity, fleetRefill), Every: fleetEvery,
		})
		procs = append(procs, p)
		runs.Go(func() { p.Run(ctx) })
	}
	// When each call let through was, by address.
	var mu sync.Mutex
	admitted := make([][]time.Duration, len(ips))
	var hammers sync.WaitGroup
	start := time.Now()
	deadline := start.Add(fleetFor)
	for _, p := range procs {
		for i, ip := range ips {
			hammers.Go(func() {
				var mine []time.Duration
				for now := time.Now(); now.Before(deadline); now = time.Now() {
					if ok, _ := p.take(ip, now); ok {
						mine = append(mine, now.Sub(start))
					}
					time.Sleep(200 * time.Microsecond)
				}
				mu.Lock()
				defer mu.Unlock()
				admitted[i] = append(admitted[i], mine...)
			})
		}
	}
	hammers.Wait()
	elapsed := time.Since(start)
	stop()
	runs.Wait()

	bucket := fleetCapacity + fleetRefill*elapsed.Seconds()
	// The interval, plus a report's round trip and a late tick on a busy box.
	overshoot := fleetProcesses * (fleetCapacity + fleetRefill*(fleetEvery+50*time.Millisecond).Seconds())
	for i, ip := range ips {
		got := float64(len(admitted[i]))
		// The most the calls let through by any moment were over what
		// one bucket allows by then.
		slices.Sort(admitted[i])
		peak, at := 0.0, time.Duration(0)
		for k, d := range admitted[i] {
			if over := float64(k+1) - (fleetCapacity + fleetRefill*d.Seconds()); over > peak {
				peak, at = over, d
			}
		}
		t.Logf("%s: %v let through in %v by %d processes; one bucket allows %.0f, so over it by %+.0f at the end and by %.0f at most (at %v); bound %.0f; unshared they would allow %.0f",
			ip, got, elapsed.Round(time.Millisecond), fleetProcesses, bucket, got-bucket, peak, at.Round(time.Millisecond), overshoot, fleetProcesses*bucket)
		if peak > overshoot {
			t.Errorf("%s: by %v, %.0f calls more were let through than one bucket allows, want at most the overshoot, %.0f", ip, at, peak, overshoot)
		}
		if got < 0.75*bucket {
			t.Errorf("%s: %v calls let through, want about one bucket's %.0f (at least 75%% of it)", ip, got, bucket)
		}
	}
}

// TestIPBucketsRedisDown: while Redis does not answer, calls are still
// limited, by each process's own bucket; the failed reports are counted
// and logged once; once Redis is back, the buckets are shared again.
func TestIPBucketsRedisDown(t *testing.T) {
	proxy := newCutProxy(t, testenv.RedisURL())
	logs := &lines{}
	b := NewIPBuckets(10, 20, &IPSharing{
		Buckets: sharedLimiter(t, proxy.url(), testPrefix(), 10, 20), Every: 20 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(logs, nil)),
	})
	ctx, stop := context.WithCancel(t.Context())
	var run sync.WaitGroup
	run.Go(func() { b.Run(ctx) })
	defer func() { stop(); run.Wait() }()

	proxy.cut(true)
	const ip = "192.0.2.20"
	start := time.Now()
	var admitted int
	for time.Since(start) < time.Second {
		if ok, _ := b.take(ip, time.Now()); ok {
			admitted++
		}
		time.Sleep(time.Millisecond)
	}
	bucket := 10 + 20*time.Since(start).Seconds()
	if float64(admitted) > bucket+1 || float64(admitted) < 0.75*bucket {
		t.Errorf("Redis down: %d calls let through in 1s, want about this process's bucket, %.0f", admitted, bucket)
	}
	if n := testutil.ToFloat64(b.syncErrors); n < 2 {
		t.Errorf("flashsale_rate_limit_sync_errors_total = %v, want a failed report each interval", n)
	}
	if n := logs.count(); n != 1 {
		t.Errorf("%d log lines while Redis was down, want 1:\n%s", n, logs)
	}

	proxy.cut(false)
	waitUntil(t, 5*time.Second, "the reports to succeed again", func() bool {
		b.take("192.0.2.21", time.Now())
		time.Sleep(20 * time.Millisecond)
		return logs.count() == 2
	})
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
	}
}

// lines collects log output.
type lines struct {
	mu  sync.Mutex
	buf []byte
	n   int
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	l.n++
	return len(p), nil
}

func (l *lines) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}

// cutProxy forwards TCP connections to a Redis until cut: then it drops
// the connections it holds and every new one at once, as a Redis that
// went away would be, until it is let through again.
type cutProxy struct {
	lis   net.Listener
	redis *url.URL // where it forwards to

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
}

func newCutProxy(t *testing.T, redisURL string) *cutProxy {
	t.Helper()
	u, err := url.Parse(redisURL)
	if err != nil || u.Scheme != "redis" {
		t.Fatalf("TEST_REDIS_URL=%q: want a redis:// URL (%v)", redisURL, err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{lis: lis, redis: u, conns: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		lis.Close()
		p.cut(true)
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.serve(c) })
		}
	})
	return p
}

// url is the Redis URL to reach the Redis through the proxy.
func (p *cutProxy) url() string {
	u := *p.redis
	u.Host = p.lis.Addr().String()
	return u.String()
}

func (p *cutProxy) serve(c net.Conn) {
	up, err := net.Dial("tcp", p.redis.Host)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	var both sync.WaitGroup
	both.Go(func() { io.Copy(up, c); up.Close() })
	both.Go(func() { io.Copy(c, up); c.Close() })
	both.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// cut drops every connection and refuses new ones (down), or lets them
// through again.
func (p *cutProxy) cut(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
	}
}

// noShared are shared buckets that are never reached: take makes no
// Redis call, Run does.
type noShared struct{}

func (noShared) TakeMany(context.Context, []redis.Take) []redis.Balance {
	panic("the hot path reached Redis")
}

// BenchmarkIPBucketsTake: a call's check against shared buckets, from
// many addresses at once; no Redis on the way.
func BenchmarkIPBucketsTake(b *testing.B) {
	ips := NewIPBuckets(1<<30, 1e9, &IPSharing{Buckets: noShared{}, Every: time.Hour})
	b.RunParallel(func(pb *testing.PB) {
		var i int
		for pb.Next() {
			ips.take(fmt.Sprintf("10.0.%d.%d", i>>8&255, i&255), time.Now())
			i++
		}
	})
}
