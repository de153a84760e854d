package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/redis"
)

// metricValue gathers c's metrics and returns the value of the one named
// name whose labels include those given (name, value pairs).
func metricValue(t *testing.T, c *redis.Client, name string, labels ...string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.Collectors()...)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
				}
				if !found {
					continue metrics
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

// TestReconcileDrift: a reconcile that finds the gate as PostgreSQL says
// counts no drift; one that finds stock and buyers off counts what it
// corrected.
func TestReconcileDrift(t *testing.T) {
	t.Parallel()
	prefix := newPrefix()
	c := newClientPrefix(t, prefix)
	g := redis.NewGate(c)
	sl := openSale()
	buyer, held := newID(), newID()
	mustLoad(t, g, sl, 10, map[uuid.UUID]uuid.UUID{buyer: held})
	if n := metricValue(t, c, "flashsale_redis_script_seconds", "script", "load"); n != 1 {
		t.Errorf("load scripts timed = %v, want 1", n)
	}

	mustReconcile(t, g, stateOf(sl, 10, map[uuid.UUID]uuid.UUID{buyer: held}))
	if d := metricValue(t, c, "flashsale_reconcile_drift_units_total"); d != 0 {
		t.Errorf("drift after an exact reconcile = %v units, want 0", d)
	}

	// Redis lost a buyer and has 3 units too many.
	rc := rawClient(t)
	ctx := t.Context()
	if err := rc.Do(ctx, rc.B().Set().Key(productKey(prefix, sl.ProductID, "stock")).Value("13").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if err := rc.Do(ctx, rc.B().Hdel().Key(saleKey(prefix, sl, "buyers")).Field(buyer.String()).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	mustReconcile(t, g, stateOf(sl, 10, map[uuid.UUID]uuid.UUID{buyer: held}))
	if d := metricValue(t, c, "flashsale_reconcile_drift_units_total"); d != 3 {
		t.Errorf("drift units = %v, want 3", d)
	}
	if d := metricValue(t, c, "flashsale_reconcile_drift_buyers_total"); d != 1 {
		t.Errorf("drift buyers = %v, want 1", d)
	}
	if n := metricValue(t, c, "flashsale_reconcile_runs_total"); n != 2 {
		t.Errorf("reconciles = %v, want 2", n)
	}
	if n := metricValue(t, c, "flashsale_reconcile_last_drift_units"); n != 3 {
		t.Errorf("last drift = %v, want 3", n)
	}
}

// TestQueueStats: a stream's length, lag, pending entries, oldest entry
// and consumers as workers read it.
func TestQueueStats(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	g, q := redis.NewGate(c), redis.NewQueue(c)
	sl := openSale()
	mustLoad(t, g, sl, 10, nil)
	admitQueued(t, g, sl, 3)
	time.Sleep(20 * time.Millisecond)
	if _, err := q.Read(t.Context(), "w1", 1, 0, time.Hour); err != nil {
		t.Fatal(err)
	}
	stats, err := q.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 1 {
		t.Fatalf("Stats = %+v, want one stream", stats)
	}
	st := stats[0]
	if st.ProductID != sl.ProductID || st.Length != 3 || st.Pending != 1 || st.Lag != 2 {
		t.Errorf("Stats = %+v, want product %s, length 3, pending 1, lag 2", st, sl.ProductID)
	}
	if st.Oldest < 20*time.Millisecond || st.Oldest > time.Minute {
		t.Errorf("oldest entry %v old, want 20ms to a minute", st.Oldest)
	}
	if len(st.Consumers) != 1 || st.Consumers[0].Name != "w1" || st.Consumers[0].Pending != 1 {
		t.Errorf("consumers = %+v, want w1 holding 1", st.Consumers)
	}
}

// TestQueueCarriesTrace: an order queued under a sampled span carries its
// trace context to the worker that reads it; one queued untraced, or
// under an unsampled span, carries none.
func TestQueueCarriesTrace(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	g, q := redis.NewGate(c), redis.NewQueue(c)
	sl := openSale()
	mustLoad(t, g, sl, 10, nil)
	span := func(flags trace.TraceFlags) trace.SpanContext {
		return trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, byte(flags) + 1},
			SpanID:  trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, TraceFlags: flags,
		})
	}
	sampled, unsampled := span(trace.FlagsSampled), span(0)
	want := map[uuid.UUID]trace.SpanContext{}
	for _, sc := range []trace.SpanContext{sampled, unsampled, {}} {
		ctx := trace.ContextWithSpanContext(context.Background(), sc)
		a := queued(sl, newID())
		if d, _, err := g.Admit(ctx, a); err != nil || d != order.Admitted {
			t.Fatalf("Admit = %v, %v", d, err)
		}
		want[a.Order.ID] = sc
	}
	got, err := q.Read(t.Context(), "w1", 10, time.Second, time.Hour)
	if err != nil || len(got) != 3 {
		t.Fatalf("Read = %d entries, %v; want 3", len(got), err)
	}
	for _, e := range got {
		sc := want[e.ID]
		if sc.IsSampled() {
			if e.Trace.TraceID() != sc.TraceID() || e.Trace.SpanID() != sc.SpanID() || !e.Trace.IsSampled() || !e.Trace.IsRemote() {
				t.Errorf("sampled order read with trace %v, want %v (remote)", e.Trace, sc)
			}
		} else if e.Trace.IsValid() {
			t.Errorf("order queued under %v read with trace %v, want none", sc, e.Trace)
		}
	}
}
