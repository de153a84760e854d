package telemetry

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestDecide(t *testing.T) {
	caller := func(flags trace.TraceFlags) trace.SpanContext {
		return trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
			SpanID:  trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, TraceFlags: flags, Remote: true,
		})
	}
	tests := []struct {
		sampler string
		ratio   float64
		parent  trace.SpanContext
		want    bool
	}{
		{"parentbased_traceidratio", 0, trace.SpanContext{}, false},
		{"parentbased_traceidratio", 1, trace.SpanContext{}, true},
		{"parentbased_traceidratio", 0, caller(trace.FlagsSampled), true},
		{"parentbased_traceidratio", 1, caller(0), false},
		{"parentbased_always_on", 0, trace.SpanContext{}, true},
		{"always_off", 0, caller(trace.FlagsSampled), false},
		{"traceidratio", 1, caller(0), true},
	}
	for _, tt := range tests {
		s, err := Sampler(tt.sampler, tt.ratio)
		if err != nil {
			t.Fatal(err)
		}
		exp := tracetest.NewInMemoryExporter()
		p := NewProvider(s, sdktrace.WithSyncer(exp))
		ctx, sampled := p.Decide(context.Background(), tt.parent)
		if sampled != tt.want {
			t.Errorf("%s %v, parent sampled %v: Decide = %v, want %v", tt.sampler, tt.ratio, tt.parent.IsSampled(), sampled, tt.want)
			continue
		}
		if !sampled {
			if trace.SpanContextFromContext(ctx).IsValid() {
				t.Errorf("%s: Decide changed the context of an unsampled request", tt.sampler)
			}
			continue
		}
		// The root span the instrumentation then starts is sampled by the
		// SDK too (same trace id, same sampler).
		if tt.parent.IsValid() {
			ctx = trace.ContextWithRemoteSpanContext(ctx, tt.parent)
		}
		_, span := p.Tracer("test").Start(ctx, "request", trace.WithSpanKind(trace.SpanKindServer))
		span.End()
		if got := len(exp.GetSpans()); got != 1 {
			t.Errorf("%s %v: %d spans exported after a sampled decision, want 1", tt.sampler, tt.ratio, got)
		}
	}
}

func TestSamplerNames(t *testing.T) {
	for _, name := range []string{"always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio", ""} {
		if _, err := Sampler(name, 0.5); err != nil {
			t.Errorf("Sampler(%q): %v", name, err)
		}
	}
	if _, err := Sampler("sometimes", 1); err == nil {
		t.Error("Sampler(sometimes) = nil error")
	}
}
