package redis

import (
	"context"
	"time"

	"github.com/redis/rueidis"
	"github.com/redis/rueidis/rueidisotel"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// WithTracerProvider traces every command and script sent within a sampled
// trace as a child span: the command's name, and a script's after it
// ("EVALSHA admit"). Keys and arguments are not recorded. Commands outside
// any trace (pollers, the workers' blocking reads) make no span. A nil tp
// adds nothing.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *Client) { c.tp = tp }
}

// newTracedClient is rueidis.NewClient whose commands, within a sampled
// trace, go through rueidisotel; the others (nearly all, at a low sampling
// ratio) go straight to the client, paying one context lookup.
func newTracedClient(opt rueidis.ClientOption, tp trace.TracerProvider) (rueidis.Client, error) {
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, err
	}
	// WithClient, deprecated for NewClient, wraps the client we hold too:
	// both send on the same connections.
	traced := rueidisotel.WithClient(rc, //nolint:staticcheck
		rueidisotel.WithTracerProvider(tp),
		rueidisotel.WithMeterProvider(noop.NewMeterProvider()), // the metrics are Prometheus's
		rueidisotel.WithSpanNameFormatter(func(ctx context.Context, op string) string {
			if name, ok := ctx.Value(scriptKey{}).(string); ok {
				return op + " " + name
			}
			return op
		}),
	)
	return sampledOnly{Client: rc, traced: traced}, nil
}

// sampledOnly sends a command through traced when its context holds a
// sampled span, else through the embedded client. A command outside any
// call (pollers, the workers' blocking reads) thus starts no trace.
type sampledOnly struct {
	rueidis.Client
	traced rueidis.Client
}

func (c sampledOnly) pick(ctx context.Context) rueidis.Client {
	if trace.SpanContextFromContext(ctx).IsSampled() {
		return c.traced
	}
	return c.Client
}

func (c sampledOnly) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	return c.pick(ctx).Do(ctx, cmd)
}

func (c sampledOnly) DoMulti(ctx context.Context, cmds ...rueidis.Completed) []rueidis.RedisResult {
	return c.pick(ctx).DoMulti(ctx, cmds...)
}

func (c sampledOnly) DoCache(ctx context.Context, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	return c.pick(ctx).DoCache(ctx, cmd, ttl)
}

func (c sampledOnly) DoMultiCache(ctx context.Context, cmds ...rueidis.CacheableTTL) []rueidis.RedisResult {
	return c.pick(ctx).DoMultiCache(ctx, cmds...)
}

func (c sampledOnly) DoStream(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResultStream {
	return c.pick(ctx).DoStream(ctx, cmd)
}

func (c sampledOnly) DoMultiStream(ctx context.Context, cmds ...rueidis.Completed) rueidis.MultiRedisResultStream {
	return c.pick(ctx).DoMultiStream(ctx, cmds...)
}

// scriptKey carries the name of the script being run to the span namer.
type scriptKey struct{}

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
