package grpcapi

import (
	"context"

	"github.com/google/uuid"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"

	"github.com/flashsale/flashsale/internal/telemetry"
)

// traceOptions configure otelgrpc's stats handlers, on the server and on
// the REST gateway's connection to it: W3C trace context, the flashsale
// services only (not health checks or reflection), and no OpenTelemetry
// metrics (the server's metrics are Prometheus's).
func traceOptions(tp trace.TracerProvider) []otelgrpc.Option {
	return []otelgrpc.Option{
		otelgrpc.WithTracerProvider(tp),
		otelgrpc.WithPropagators(telemetry.Propagator),
		otelgrpc.WithMeterProvider(noop.NewMeterProvider()),
		otelgrpc.WithFilter(filters.ServicePrefix("flashsale.")),
	}
}

// TraceDialOptions make a client of this server (the REST gateway) trace
// its calls and send their trace context along, so that the server's spans
// join the caller's trace; none when tp is nil. A call whose context is
// not sampled is not instrumented: it only carries its unsampled
// traceparent, so the server does not sample it anew.
func TraceDialOptions(tp trace.TracerProvider) []grpc.DialOption {
	if tp == nil {
		return nil
	}
	return []grpc.DialOption{grpc.WithStatsHandler(&clientTrace{otel: otelgrpc.NewClientHandler(traceOptions(tp)...)})}
}

// serverTraceHandler is otelgrpc's server handler behind the sampling
// decision (telemetry.Decider), taken from the caller's traceparent.
func serverTraceHandler(tp trace.TracerProvider) stats.Handler {
	return &serverTrace{otel: otelgrpc.NewServerHandler(traceOptions(tp)...), decider: telemetry.DeciderOf(tp)}
}

type serverTrace struct {
	otel    stats.Handler
	decider telemetry.Decider
}

func (h *serverTrace) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	var parent trace.SpanContext
	if tp := metadata.ValueFromIncomingContext(ctx, "traceparent"); len(tp) > 0 {
		c := propagation.MapCarrier{"traceparent": tp[0]}
		if ts := metadata.ValueFromIncomingContext(ctx, "tracestate"); len(ts) > 0 {
			c["tracestate"] = ts[0]
		}
		parent = trace.SpanContextFromContext(propagation.TraceContext{}.Extract(ctx, c))
	}
	ctx, sampled := h.decider.Decide(ctx, parent)
	if !sampled {
		return ctx // nothing downstream in this process samples anew
	}
	return context.WithValue(h.otel.TagRPC(ctx, info), tracedRPCKey{}, true)
}

func (h *serverTrace) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if ctx.Value(tracedRPCKey{}) != nil {
		h.otel.HandleRPC(ctx, s)
	}
}

func (h *serverTrace) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	return h.otel.TagConn(ctx, info)
}

func (h *serverTrace) HandleConn(ctx context.Context, s stats.ConnStats) { h.otel.HandleConn(ctx, s) }

// tracedRPCKey marks a call the server handler instruments.
type tracedRPCKey struct{}

type clientTrace struct{ otel stats.Handler }

func (h *clientTrace) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	sc := trace.SpanContextFromContext(ctx)
	switch {
	case sc.IsSampled():
		return context.WithValue(h.otel.TagRPC(ctx, info), tracedRPCKey{}, true)
	case sc.IsValid():
		c := propagation.MapCarrier{}
		propagation.TraceContext{}.Inject(ctx, c)
		return metadata.AppendToOutgoingContext(ctx, "traceparent", c["traceparent"])
	}
	return ctx
}

func (h *clientTrace) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if ctx.Value(tracedRPCKey{}) != nil {
		h.otel.HandleRPC(ctx, s)
	}
}

func (h *clientTrace) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	return h.otel.TagConn(ctx, info)
}

func (h *clientTrace) HandleConn(ctx context.Context, s stats.ConnStats) { h.otel.HandleConn(ctx, s) }

// traceOutcome records a PlaceOrder's outcome, and the order's id when
// there is one, on the call's span, if it is being recorded.
func traceOutcome(ctx context.Context, outcome string, orderID uuid.UUID) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.String("flashsale.order.outcome", outcome))
	if orderID != uuid.Nil {
		span.SetAttributes(attribute.String("flashsale.order.id", orderID.String()))
	}
}
