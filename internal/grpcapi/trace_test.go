package grpcapi

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/flashsale/flashsale/internal/telemetry"
)

// BenchmarkServerTracing is what the tracing interceptor adds to one call
// at the sampling ratios of a production deployment: compare with the
// ~45 µs of CPU a PlaceOrder takes on the benchmark machine.
func BenchmarkServerTracing(b *testing.B) {
	for _, tc := range []struct {
		name  string
		ratio float64
	}{{"unsampled", 0}, {"sampled 1%", 0.01}, {"sampled 100%", 1}} {
		b.Run(tc.name, func(b *testing.B) {
			sampler, err := telemetry.Sampler("parentbased_traceidratio", tc.ratio)
			if err != nil {
				b.Fatal(err)
			}
			tp := telemetry.NewProvider(sampler, sdktrace.WithSyncer(tracetest.NewNoopExporter()))
			t := newServerTracing(tp)
			ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(
				"authorization", "Bearer x", "content-type", "application/grpc", "user-agent", "grpc-go/1.85.0"))
			info := &grpc.UnaryServerInfo{FullMethod: "/flashsale.v1.OrderService/PlaceOrder"}
			handler := func(ctx context.Context, req any) (any, error) { return req, nil }
			b.ReportAllocs()
			for b.Loop() {
				_, _ = t.unary(ctx, nil, info, handler)
			}
		})
	}
}

func TestCanonicalCode(t *testing.T) {
	for c, want := range map[codes.Code]string{codes.OK: "OK", codes.NotFound: "NOT_FOUND", codes.ResourceExhausted: "RESOURCE_EXHAUSTED", codes.DataLoss: "DATA_LOSS"} {
		if got := canonicalCode(c); got != want {
			t.Errorf("canonicalCode(%v) = %q, want %q", c, got, want)
		}
	}
}
