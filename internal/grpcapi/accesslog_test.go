package grpcapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/product"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testenv"
)

// TestAccessLogFollowsLevel: at info every finished call is logged; at
// error the access log is not installed and the same call writes nothing.
func TestAccessLogFollowsLevel(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  bool
	}{{slog.LevelInfo, true}, {slog.LevelError, false}} {
		t.Run(tc.level.String(), func(t *testing.T) {
			var out testenv.Buffer
			s := NewServer(Deps{
				Log:     slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: tc.level})),
				Metrics: prometheus.NewRegistry(),
			})
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = s.Serve(lis) }()
			defer s.Stop()
			conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
				t.Fatal(err)
			}
			s.Stop() // the log line is written once the call has finished on the server
			got := strings.Contains(out.String(), "finished call")
			if got != tc.want {
				t.Errorf("access log line written = %v, want %v; log:\n%s", got, tc.want, out.String())
			}
		})
	}
}

// logRecords decodes the JSON lines of a slog.JSONHandler.
func logRecords(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for line := range strings.Lines(out) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		recs = append(recs, m)
	}
	return recs
}

func jsonLog(out *testenv.Buffer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: level}))
}

// TestAccessLogBudget: thousands of health checks from concurrent callers
// write at most LOG_ACCESS_PER_SECOND access lines in each second, and the
// lines left out are all counted in "lines suppressed" summaries.
func TestAccessLogBudget(t *testing.T) {
	const perSecond, callers, each = 5, 8, 500
	var out testenv.Buffer
	s := NewServer(Deps{Log: jsonLog(&out, slog.LevelInfo), Metrics: prometheus.NewRegistry(), AccessLogPerSecond: perSecond})
	health := healthpb.NewHealthClient(serve(t, s))

	first := time.Now()
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range each {
				if _, err := health.Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// One more call in a later second writes the summary of the last one.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	if _, err := health.Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	last := time.Now()
	s.Stop()

	var lines, summaries, suppressed int
	for _, r := range logRecords(t, out.String()) {
		switch r["msg"] {
		case "finished call":
			lines++
			if r["level"] != "INFO" || r["grpc.method"] != "Check" || r["grpc.code"] != "OK" {
				t.Errorf("access line %v, want INFO Check OK", r)
			}
		case "access log: lines suppressed":
			summaries++
			suppressed += int(r["suppressed"].(float64))
		default:
			t.Errorf("unexpected log line %v", r)
		}
	}
	calls := callers*each + 1
	seconds := int(last.Unix()-first.Unix()) + 1
	if lines > perSecond*seconds {
		t.Errorf("%d access lines in %d seconds, budget %d a second", lines, seconds, perSecond)
	}
	if summaries == 0 {
		t.Error("no summary of the suppressed lines")
	}
	if lines+suppressed != calls {
		t.Errorf("%d lines written + %d suppressed = %d, want every one of %d calls accounted for",
			lines, suppressed, lines+suppressed, calls)
	}
}

// panicOrders panics in Place.
type panicOrders struct{ failingStore }

func (panicOrders) Place(context.Context, uuid.UUID, uuid.UUID) (order.Order, error) {
	panic("boom in place")
}

// TestAccessLogLevels: through a real server, a sale's refusals are
// logged at debug only; failures (an internal error, a panic, a dependency
// down) at error or warn, every one of them, past a budget of one line a
// second, with their cause beside them.
func TestAccessLogLevels(t *testing.T) {
	place := func(t *testing.T, orders Orders, level slog.Level, n int) []map[string]any {
		t.Helper()
		var out testenv.Buffer
		s := NewServer(Deps{
			Auth: tokenAuth{}, Orders: orders, Log: jsonLog(&out, level),
			Metrics: prometheus.NewRegistry(), Now: time.Now, AccessLogPerSecond: 1,
		})
		client := flashsalev1.NewOrderServiceClient(serve(t, s))
		for range n {
			_, err := client.PlaceOrder(withToken(t.Context(), "customer"), &flashsalev1.PlaceOrderRequest{ProductId: uuid.NewString()})
			if err == nil {
				t.Fatal("PlaceOrder succeeded; the store fails every call")
			}
		}
		s.Stop()
		return logRecords(t, out.String())
	}
	count := func(recs []map[string]any, msg, level string) int {
		n := 0
		for _, r := range recs {
			if r["msg"] == msg && r["level"] == level {
				n++
			}
		}
		return n
	}

	for _, tc := range []struct {
		name string
		err  error
	}{
		{"sold out", order.ErrSoldOut},
		{"already ordered", &order.AlreadyOrderedError{OrderID: uuid.New()}},
		{"sale not active", order.ErrSaleNotActive},
		{"queue busy", &order.BusyError{RetryAfter: time.Second}},
		{"rate limited", &rateLimited{scope: "user", retryAfter: time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, level := range []slog.Level{slog.LevelInfo, slog.LevelWarn} {
				if recs := place(t, failingStore{err: tc.err}, level, 3); len(recs) != 0 {
					t.Errorf("at %v a refusal wrote %v", level, recs)
				}
			}
			recs := place(t, failingStore{err: tc.err}, slog.LevelDebug, 1)
			if len(recs) != 1 || recs[0]["msg"] != "finished call" || recs[0]["level"] != "DEBUG" || recs[0]["grpc.method"] != "PlaceOrder" {
				t.Errorf("at debug a refusal wrote %v, want one DEBUG access line", recs)
			}
		})
	}

	t.Run("internal error", func(t *testing.T) {
		const n = 20
		recs := place(t, failingStore{err: errors.New("disk on fire")}, slog.LevelError, n)
		if got := count(recs, "finished call", "ERROR"); got != n {
			t.Errorf("%d ERROR access lines for %d internal errors, want every one: %v", got, n, recs)
		}
		causes := 0
		for _, r := range recs {
			if r["msg"] == "internal error" && strings.Contains(fmt.Sprint(r["err"]), "disk on fire") {
				causes++
			}
		}
		if causes != n {
			t.Errorf("%d internal errors logged with their cause, want %d", causes, n)
		}
	})
	t.Run("panic", func(t *testing.T) {
		recs := place(t, panicOrders{}, slog.LevelError, 3)
		if got := count(recs, "finished call", "ERROR"); got != 3 {
			t.Errorf("%d ERROR access lines for 3 panics: %v", got, recs)
		}
		if got := count(recs, "panic in handler", "ERROR"); got != 3 {
			t.Errorf("%d panics logged, want 3: %v", got, recs)
		}
	})
	t.Run("dependency down", func(t *testing.T) {
		const n = 10
		recs := place(t, failingStore{err: downError{}}, slog.LevelWarn, n)
		if got := count(recs, "finished call", "WARN"); got != n {
			t.Errorf("%d WARN access lines for %d calls answered Unavailable, want every one: %v", got, n, recs)
		}
		if got := count(recs, "dependency unavailable", "WARN"); got != n {
			t.Errorf("%d causes logged, want %d", got, n)
		}
	})
}

// TestAccessLevel: every answer toStatus gives is logged at the level the
// access log promises: failures always, refusals at debug.
func TestAccessLevel(t *testing.T) {
	id := uuid.New()
	for _, tc := range []struct {
		err    error
		level  slog.Level
		always bool
	}{
		{nil, slog.LevelInfo, false},
		{order.ErrSoldOut, slog.LevelDebug, false},
		{order.ErrAlreadyOrdered, slog.LevelDebug, false},
		{&order.AlreadyOrderedError{OrderID: id}, slog.LevelDebug, false},
		{order.ErrSaleNotActive, slog.LevelDebug, false},
		{sale.ErrOverlap, slog.LevelDebug, false},
		{auth.ErrEmailTaken, slog.LevelDebug, false},
		{&rateLimited{scope: "ip", retryAfter: time.Second}, slog.LevelDebug, false},
		{&order.BusyError{RetryAfter: time.Second}, slog.LevelDebug, false},
		{auth.ErrBusy, slog.LevelDebug, false},
		{&order.OrderError{Err: order.ErrInProgress, OrderID: id}, slog.LevelDebug, false},
		{auth.ErrInvalidCredentials, slog.LevelInfo, false},
		{product.ErrNotFound, slog.LevelInfo, false},
		{context.Canceled, slog.LevelInfo, false},
		{context.DeadlineExceeded, slog.LevelWarn, false},
		{&order.OrderError{Err: order.ErrOutcomeUnknown, OrderID: id}, slog.LevelWarn, true},
		{order.ErrUnavailable, slog.LevelWarn, true},
		{downError{}, slog.LevelWarn, true},
		{errors.New("disk on fire"), slog.LevelError, true},
	} {
		st := toStatus(context.Background(), slog.New(slog.DiscardHandler), tc.err)
		level, always := accessLevel(status.Code(st), st)
		if level != tc.level || always != tc.always {
			t.Errorf("%v (%v): level %v always %v, want %v %v", tc.err, status.Code(st), level, always, tc.level, tc.always)
		}
	}
	if level, always := accessLevel(codes.Unavailable, errShuttingDown); level != slog.LevelInfo || always {
		t.Errorf("a stream ended by shutdown: level %v always %v, want INFO within the budget", level, always)
	}
}
