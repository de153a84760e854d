package grpcapi

import (
	"context"

	"github.com/google/uuid"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

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
// join the caller's trace; none when tp is nil.
func TraceDialOptions(tp trace.TracerProvider) []grpc.DialOption {
	if tp == nil {
		return nil
	}
	return []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(traceOptions(tp)...))}
}

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
