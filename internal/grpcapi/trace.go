package grpcapi

import (
	"context"
	"strings"
	"unicode"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/flashsale/flashsale/internal/telemetry"
)

// Tracing gRPC calls is done with interceptors, not otelgrpc's stats
// handlers: gRPC does work for a stats handler on every call, sampled or
// not (it copies the incoming metadata and builds an event per header,
// message and end), which cost a rush ~5% of its CPU with nothing traced.
// An interceptor that finds the call unsampled costs the decision only.

// tracerName names the spans this package starts.
const tracerName = "github.com/flashsale/flashsale/internal/grpcapi"

// serverTracing starts a server span for each sampled flashsale call,
// continuing the trace of a caller that sent traceparent metadata.
type serverTracing struct {
	tracer  trace.Tracer
	decider telemetry.Decider
}

func newServerTracing(tp trace.TracerProvider) *serverTracing {
	return &serverTracing{tracer: tp.Tracer(tracerName), decider: telemetry.DeciderOf(tp)}
}

// start decides whether the call is traced and, if so, starts its span.
func (t *serverTracing) start(ctx context.Context, method string) (context.Context, trace.Span) {
	if !strings.HasPrefix(method, "/flashsale.") {
		return ctx, nil // health checks and reflection
	}
	if r := httpRequestOf(ctx); r != nil {
		// A REST call: its HTTP edge decided, and its span (when sampled)
		// is the parent.
		parent := trace.SpanContextFromContext(r.Context())
		if !parent.IsSampled() {
			return ctx, nil
		}
		ctx = trace.ContextWithSpanContext(ctx, parent)
		return t.tracer.Start(ctx, method[1:], trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(semconv.RPCSystemNameGRPC, semconv.RPCMethod(method[1:])))
	}
	var parent trace.SpanContext
	if tp := metadata.ValueFromIncomingContext(ctx, "traceparent"); len(tp) > 0 {
		c := propagation.MapCarrier{"traceparent": tp[0]}
		if ts := metadata.ValueFromIncomingContext(ctx, "tracestate"); len(ts) > 0 {
			c["tracestate"] = ts[0]
		}
		parent = trace.SpanContextFromContext(propagation.TraceContext{}.Extract(ctx, c))
	}
	ctx, sampled := t.decider.Decide(ctx, parent)
	if !sampled {
		return ctx, nil // nothing downstream in this process samples it anew
	}
	if parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	return t.tracer.Start(ctx, method[1:], trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(semconv.RPCSystemNameGRPC, semconv.RPCMethod(method[1:])))
}

func (t *serverTracing) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, span := t.start(ctx, info.FullMethod)
	if span == nil {
		return handler(ctx, req)
	}
	resp, err := handler(ctx, req)
	endSpan(span, err, serverFault)
	return resp, err
}

func (t *serverTracing) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, span := t.start(ss.Context(), info.FullMethod)
	if span == nil {
		return handler(srv, ss)
	}
	err := handler(srv, &tracedStream{ServerStream: ss, ctx: ctx})
	endSpan(span, err, serverFault)
	return err
}

// tracedStream is a server stream whose context holds its span.
type tracedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *tracedStream) Context() context.Context { return s.ctx }

// serverFault: the codes that are the server's fault, which mark a server
// span as failed (OpenTelemetry's gRPC conventions); a refusal such as
// NotFound or ResourceExhausted is the call's answer, not an error of the
// server.
func serverFault(c codes.Code) bool {
	switch c {
	case codes.Unknown, codes.DeadlineExceeded, codes.Unimplemented, codes.Internal, codes.Unavailable, codes.DataLoss:
		return true
	}
	return false
}

// endSpan records the call's status code and ends span.
func endSpan(span trace.Span, err error, failed func(codes.Code) bool) {
	st := status.Convert(err)
	span.SetAttributes(semconv.RPCResponseStatusCode(canonicalCode(st.Code())))
	if failed(st.Code()) {
		span.SetStatus(otelcodes.Error, st.Message())
	}
	span.End()
}

// canonicalCode is a code as gRPC's specification spells it: NOT_FOUND.
func canonicalCode(c codes.Code) string {
	if c == codes.OK {
		return "OK"
	}
	var b strings.Builder
	for i, r := range c.String() {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
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
