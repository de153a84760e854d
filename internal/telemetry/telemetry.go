// Package telemetry sets up OpenTelemetry tracing from the standard OTEL_*
// environment variables, which the SDK reads itself.
//
// Tracing is off unless configured (config.Config.Tracing). Off, Setup
// installs nothing and Provider is nil: the packages that take a tracer
// provider then add no instrumentation at all (no stats handler, no HTTP
// middleware, no query tracer, no Redis wrapper), so tracing off costs
// nothing.
package telemetry

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ServiceName names the service in traces unless OTEL_SERVICE_NAME (or
// service.name in OTEL_RESOURCE_ATTRIBUTES) says otherwise.
const ServiceName = "flashsale"

// Propagator reads and writes the trace context that crosses a process
// boundary: W3C traceparent and tracestate, and W3C baggage. REST and gRPC
// calls carry it in headers, a queued order in its stream entry.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(
	propagation.TraceContext{}, propagation.Baggage{},
)

// Tracing is the process's tracer provider, or none when tracing is off.
type Tracing struct {
	tp *sdktrace.TracerProvider
}

// Setup starts tracing when enabled: spans go to the exporter
// OTEL_TRACES_EXPORTER names (otlp by default, to OTEL_EXPORTER_OTLP_ENDPOINT
// over OTEL_EXPORTER_OTLP_PROTOCOL; console), in batches, sampled as
// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG say (by default every
// trace a caller does not mark unsampled). It also makes the provider and
// Propagator the global ones, for libraries that only look there. When not
// enabled it returns a Tracing whose Provider is nil and touches nothing.
func Setup(ctx context.Context, enabled bool) (*Tracing, error) {
	if !enabled {
		return &Tracing{}, nil
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(ServiceName)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(Propagator)
	return &Tracing{tp: tp}, nil
}

// Provider is the tracer provider to instrument with, nil when tracing is off.
func (t *Tracing) Provider() trace.TracerProvider {
	if t == nil || t.tp == nil {
		return nil
	}
	return t.tp
}

// Shutdown sends the spans still buffered and stops the exporter; it does
// nothing when tracing is off.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.tp == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}
