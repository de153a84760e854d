package redis_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/flashsale/flashsale/internal/redis"
	"github.com/flashsale/flashsale/internal/testenv"
)

// TestWatcherNoticesRestart: a private redis-server is killed (SIGKILL) and
// started again on the same port; the watcher calls OnRestart, again at the
// next poll while it fails, and not once more after it succeeded.
func TestWatcherNoticesRestart(t *testing.T) {
	srv := startRedisServer(t, "--appendonly", "no")
	c := connect(t, srv.url())
	var calls atomic.Int32
	w := redis.NewWatcher(c, redis.WatchConfig{
		Poll: 50 * time.Millisecond,
		OnRestart: func(context.Context) error {
			if calls.Add(1) == 1 {
				return errors.New("first call fails") // must be retried
			}
			return nil
		},
	})
	runWatcher(t, w)

	time.Sleep(300 * time.Millisecond) // several polls of the same server
	if n := calls.Load(); n != 0 {
		t.Fatalf("OnRestart called %d times before any restart", n)
	}
	srv.kill()
	srv.start()
	eventually(t, 10*time.Second, "OnRestart called twice (the first call failed)", func() string {
		if n := calls.Load(); n != 2 {
			return fmt.Sprintf("%d calls", n)
		}
		return ""
	})
	time.Sleep(300 * time.Millisecond)
	if n := calls.Load(); n != 2 {
		t.Errorf("OnRestart called %d times after it succeeded, want it to stay at 2", n)
	}
}

// TestWatcherWaitsForLoading: a Redis restarted from an AOF answers LOADING
// for a while (slowed here with key-load-delay); OnRestart is called only
// once it has loaded every key, so what it does (a reconcile) sees the data.
func TestWatcherWaitsForLoading(t *testing.T) {
	const keys = 2000
	srv := startRedisServer(t, "--appendonly", "yes")
	raw := privateRaw(t, srv.url())
	ctx := t.Context()
	cmds := make(rueidis.Commands, 0, keys)
	for i := range keys {
		cmds = append(cmds, raw.B().Set().Key("k"+strconv.Itoa(i)).Value("v").Build())
	}
	for _, r := range raw.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			t.Fatalf("SET: %v", err)
		}
	}
	// The keys go into the AOF's RDB base, whose loading key-load-delay slows.
	if err := raw.Do(ctx, raw.B().Bgrewriteaof().Build()).Error(); err != nil {
		t.Fatalf("BGREWRITEAOF: %v", err)
	}
	eventually(t, 10*time.Second, "the AOF rewrite to finish", func() string {
		s, err := raw.Do(ctx, raw.B().Info().Section("persistence").Build()).ToString()
		if err != nil || !strings.Contains(s, "aof_rewrite_in_progress:0") || !strings.Contains(s, "aof_rewrite_scheduled:0") {
			return fmt.Sprintf("rewrite in progress (%v)", err)
		}
		return ""
	})

	c := connect(t, srv.url())
	var loadedAtCall atomic.Int64
	loadedAtCall.Store(-1)
	w := redis.NewWatcher(c, redis.WatchConfig{
		Poll: 50 * time.Millisecond,
		OnRestart: func(ctx context.Context) error {
			n, err := raw.Do(ctx, raw.B().Dbsize().Build()).AsInt64()
			switch {
			case err != nil && strings.Contains(err.Error(), "LOADING"):
				n = -2 // called too early
			case err != nil:
				return err // the test's own connection, not yet back: try again
			}
			loadedAtCall.Store(n)
			return nil
		},
	})
	runWatcher(t, w)
	time.Sleep(300 * time.Millisecond)

	srv.kill()
	// 2,000 keys at 1 ms each: about 2 s of LOADING.
	srv.start("--key-load-delay", "1000", "--loading-process-events-interval-bytes", "1024")
	sawLoading := false
	eventually(t, 30*time.Second, "OnRestart", func() string {
		err := raw.Do(ctx, raw.B().Ping().Build()).Error()
		if err != nil && strings.Contains(err.Error(), "LOADING") {
			sawLoading = true
		}
		if loadedAtCall.Load() == -1 {
			return fmt.Sprintf("not called yet (PING: %v)", err)
		}
		return ""
	})
	if !sawLoading {
		t.Fatal("the restarted Redis never answered LOADING; the test proves nothing (load faster than expected?)")
	}
	if got := loadedAtCall.Load(); got != keys {
		t.Errorf("DBSIZE when OnRestart was called = %d, want %d (-2: Redis was still LOADING)", got, keys)
	}
}

// TestDurability: Check follows appendonly as CONFIG SET changes it, and
// Accepting refuses while it is off unless volatile is allowed.
func TestDurability(t *testing.T) {
	srv := startRedisServer(t, "--appendonly", "yes")
	c := connect(t, srv.url())
	raw := privateRaw(t, srv.url())
	ctx := t.Context()
	strict := redis.NewDurability(c, false, quietLog())
	lenient := redis.NewDurability(c, true, quietLog())
	if err := strict.Accepting(); err != nil {
		t.Errorf("Accepting before any Check = %v, want nil", err)
	}
	if on, err := c.AppendOnly(ctx); err != nil || !on {
		t.Fatalf("AppendOnly with appendonly yes = %v, %v; want true", on, err)
	}
	if err := strict.Check(ctx); err != nil {
		t.Errorf("Check with appendonly yes = %v, want nil", err)
	}

	setAppendOnly(t, raw, "no")
	if on, err := c.AppendOnly(ctx); err != nil || on {
		t.Fatalf("AppendOnly with appendonly no = %v, %v; want false", on, err)
	}
	if err := strict.Check(ctx); !errors.Is(err, redis.ErrVolatile) {
		t.Errorf("Check with appendonly no = %v, want ErrVolatile", err)
	}
	if err := strict.Accepting(); !errors.Is(err, redis.ErrVolatile) {
		t.Errorf("Accepting with appendonly no = %v, want ErrVolatile", err)
	}
	if err := strict.Ping(ctx); err == nil {
		t.Errorf("Ping (for /readyz) with appendonly no = nil, want an error")
	}
	if err := lenient.Check(ctx); err != nil {
		t.Errorf("Check allowing volatile, appendonly no = %v, want nil", err)
	}
	if err := lenient.Accepting(); err != nil {
		t.Errorf("Accepting allowing volatile, appendonly no = %v, want nil", err)
	}

	setAppendOnly(t, raw, "yes")
	if err := strict.Check(ctx); err != nil {
		t.Errorf("Check after appendonly yes again = %v, want nil", err)
	}
	if err := strict.Accepting(); err != nil {
		t.Errorf("Accepting after appendonly yes again = %v, want nil", err)
	}
}

// TestWatcherChecksDurability: the watcher re-checks durability on its own,
// so a CONFIG SET appendonly no is noticed without a restart.
func TestWatcherChecksDurability(t *testing.T) {
	srv := startRedisServer(t, "--appendonly", "yes")
	c := connect(t, srv.url())
	raw := privateRaw(t, srv.url())
	d := redis.NewDurability(c, false, quietLog())
	if err := d.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	runWatcher(t, redis.NewWatcher(c, redis.WatchConfig{
		Poll: 50 * time.Millisecond, Durability: d, DurabilityEvery: 100 * time.Millisecond,
	}))
	setAppendOnly(t, raw, "no")
	eventually(t, 5*time.Second, "Accepting to refuse", func() string {
		if err := d.Accepting(); !errors.Is(err, redis.ErrVolatile) {
			return fmt.Sprintf("Accepting = %v", err)
		}
		return ""
	})
	setAppendOnly(t, raw, "yes")
	eventually(t, 5*time.Second, "Accepting to accept again", func() string {
		if err := d.Accepting(); err != nil {
			return fmt.Sprintf("Accepting = %v", err)
		}
		return ""
	})
}

// redisServer is a private redis-server the test starts, kills and starts
// again on one port and folder.
type redisServer struct {
	t    *testing.T
	path string
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// startRedisServer runs redis-server with args on a port of its own; it is
// killed when the test ends. It skips when redis-server is not installed,
// unless CI=true.
func startRedisServer(t *testing.T, args ...string) *redisServer {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Missing(t, "redis-server not installed (apt-get install redis-server): %v", err)
	}
	s := &redisServer{t: t, path: path, port: restartablePort(t), dir: t.TempDir(), args: args}
	s.start()
	t.Cleanup(s.kill)
	return s
}

func (s *redisServer) url() string { return "redis://127.0.0.1:" + strconv.Itoa(s.port) + "/0" }

// start runs the server (again), with extra arguments this time, and waits
// until it accepts connections (it may still be LOADING).
func (s *redisServer) start(extra ...string) {
	s.t.Helper()
	args := append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--dir", s.dir}, s.args...)
	s.cmd = exec.Command(s.path, append(args, extra...)...)
	// Its own process group, so kill also ends an AOF-rewrite child that
	// would otherwise go on writing into the test's temporary directory.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.done = make(chan struct{})
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	done := s.done
	go func() { s.cmd.Wait(); close(done) }()
	eventually(s.t, 10*time.Second, "redis-server to listen", func() string {
		conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.port))
		if err != nil {
			return err.Error()
		}
		conn.Close()
		return ""
	})
}

// kill sends SIGKILL and waits for the process to go.
func (s *redisServer) kill() {
	if s.cmd == nil {
		return
	}
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-s.done
	// Wait for the rest of the group (a forked child) to be gone too.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			break
		}
	}
	s.cmd = nil
}

// restartablePort is a free port below the kernel's usual ephemeral range
// (32768-60999): a free ephemeral port can be taken, while the server is down,
// as the local port of an outgoing connection, or a client's connection to it
// can connect to itself; either would break the restart.
func restartablePort(t *testing.T) int {
	t.Helper()
	for range 100 {
		p := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no free port in 20000-31999")
	return 0
}

// connect is a flashsale client of url, closed when the test ends.
func connect(t *testing.T, url string) *redis.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := redis.New(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(c.Close)
	return c
}

// privateRaw is a plain client of url for the test's own commands. It does
// not retry, so a LOADING answer comes back instead of being waited out.
func privateRaw(t *testing.T, url string) rueidis.Client {
	t.Helper()
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	opt.DisableRetry = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatalf("redis %s: %v", url, err)
	}
	t.Cleanup(c.Close)
	return c
}

// runWatcher runs w until the test ends, and waits for Run to return.
func runWatcher(t *testing.T, w *redis.Watcher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Watcher.Run did not return after its context ended")
		}
	})
}

func setAppendOnly(t *testing.T, raw rueidis.Client, v string) {
	t.Helper()
	if err := raw.Do(t.Context(), raw.B().ConfigSet().ParameterValue().ParameterValue("appendonly", v).Build()).Error(); err != nil {
		t.Fatalf("CONFIG SET appendonly %s: %v", v, err)
	}
}

// eventually polls cond, which describes what it saw or returns "" once it
// holds, failing the test after d.
func eventually(t *testing.T, d time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		seen := cond()
		if seen == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last saw: %s", d, what, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestWatcherLogsUnreadableDurability: a durability check that cannot reach
// Redis keeps the last answer, and says so in the log, once until a check
// reads again.
func TestWatcherLogsUnreadableDurability(t *testing.T) {
	srv := startRedisServer(t, "--appendonly", "yes")
	c := connect(t, srv.url())
	d := redis.NewDurability(c, false, quietLog())
	if err := d.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	var out testenv.Buffer
	runWatcher(t, redis.NewWatcher(c, redis.WatchConfig{
		Poll: 50 * time.Millisecond, Durability: d, DurabilityEvery: 50 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(&out, nil)),
	}))
	const unreadable = "could not read whether Redis keeps an append-only file"
	srv.kill()
	eventually(t, 5*time.Second, "the failed check to be logged", func() string {
		if !strings.Contains(out.String(), unreadable) {
			return fmt.Sprintf("log: %q", out.String())
		}
		return ""
	})
	time.Sleep(300 * time.Millisecond) // several more checks fail
	if n := strings.Count(out.String(), unreadable); n != 1 {
		t.Errorf("failed checks logged %d times, want once per outage; log:\n%s", n, out.String())
	}
	if err := d.Accepting(); err != nil {
		t.Errorf("Accepting while Redis is away = %v, want the last answer (nil)", err)
	}
	srv.start("--appendonly", "yes")
	eventually(t, 10*time.Second, "the recovery to be logged", func() string {
		if !strings.Contains(out.String(), "can be read again") {
			return fmt.Sprintf("log: %q", out.String())
		}
		return ""
	})
}
