package redis

import (
	"context"

	"github.com/redis/rueidis"
	"github.com/redis/rueidis/rueidisotel"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// WithTracerProvider traces every command and script sent within a traced
// call (a span in its context) as a child span: the command's name, and a
// script's after it ("EVALSHA admit"). Keys and arguments are not recorded.
// Commands outside any trace (pollers, the workers' blocking reads) make no
// span. A nil tp adds nothing.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *Client) { c.tp = tp }
}

// newTracedClient is rueidis.NewClient with rueidisotel's tracing.
func newTracedClient(opt rueidis.ClientOption, tp trace.TracerProvider) (rueidis.Client, error) {
	return rueidisotel.NewClient(opt,
		rueidisotel.WithTracerProvider(childSpansOnly{tp: tp}),
		rueidisotel.WithMeterProvider(noop.NewMeterProvider()), // the metrics are Prometheus's
		rueidisotel.WithSpanNameFormatter(func(ctx context.Context, op string) string {
			if name, ok := ctx.Value(scriptKey{}).(string); ok {
				return op + " " + name
			}
			return op
		}),
	)
}

// scriptKey carries the name of the script being run to the span namer.
type scriptKey struct{}

// childSpansOnly is a tracer provider whose spans start only under a span
// already in the context: a command outside any call starts no trace.
type childSpansOnly struct {
	embedded.TracerProvider
	tp trace.TracerProvider
}

func (p childSpansOnly) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childTracer{t: p.tp.Tracer(name, opts...)}
}

type childTracer struct {
	embedded.Tracer
	t trace.Tracer
}

func (t childTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, trace.SpanFromContext(ctx) // a no-op span
	}
	return t.t.Start(ctx, name, opts...)
}

// traceParent is the W3C traceparent of the span in ctx when its trace is
// sampled, else "": an unsampled order carries nothing into the stream.
func traceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsSampled() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

// spanContextOf reads a traceparent written by traceParent; the zero
// (invalid) SpanContext when there is none or it does not parse.
func spanContextOf(traceparent string) trace.SpanContext {
	if traceparent == "" {
		return trace.SpanContext{}
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceparent})
	return trace.SpanContextFromContext(ctx)
}
