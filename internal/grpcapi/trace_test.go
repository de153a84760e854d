package grpcapi

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"

	"github.com/flashsale/flashsale/internal/telemetry"
)

// BenchmarkServerTrace is what the tracing stats handler adds to one call
// (TagRPC, and HandleRPC for its begin, payloads and end), at the
// sampling ratios of a production deployment: compare with the ~45 µs of
// CPU a PlaceOrder takes on the benchmark machine.
func BenchmarkServerTrace(b *testing.B) {
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
			h := serverTraceHandler(tp)
			ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(
				"authorization", "Bearer x", "content-type", "application/grpc", "user-agent", "grpc-go/1.85.0"))
			info := &stats.RPCTagInfo{FullMethodName: "/flashsale.v1.OrderService/PlaceOrder"}
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				c := h.TagRPC(ctx, info)
				h.HandleRPC(c, &stats.Begin{BeginTime: now})
				h.HandleRPC(c, &stats.InPayload{})
				h.HandleRPC(c, &stats.OutPayload{})
				h.HandleRPC(c, &stats.End{BeginTime: now, EndTime: now})
			}
		})
	}
}
