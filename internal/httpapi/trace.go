package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale/internal/telemetry"
)

// traced wraps h in otelhttp's server span for the API's requests (/v1/),
// the probes, metrics, pages and profiles staying untraced; h as is when
// tp is nil. Whether a request is traced is decided first
// (telemetry.Decider): one that is not goes to h as it came, and the gRPC
// server knows the gateway's calls and leaves them out too. The span is named after the gateway's
// route, as OpenTelemetry's HTTP conventions ask ("POST
// /v1/products/{product_id}/orders"): paths carry ids, too many names.
func traced(h http.Handler, tp trace.TracerProvider) http.Handler {
	if tp == nil {
		return h
	}
	decider := telemetry.DeciderOf(tp)
	instrumented := otelhttp.NewHandler(h, "flashsale",
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(telemetry.Propagator),
		otelhttp.WithMeterProvider(noop.NewMeterProvider()), // the metrics are Prometheus's
		// Called as the request starts, and again once it is served.
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if rt, ok := r.Context().Value(routeKey{}).(*route); ok && rt.name != "" {
				return r.Method + " " + rt.name
			}
			return r.Method
		}),
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			h.ServeHTTP(w, r)
			return
		}
		parent := trace.SpanContextFromContext(telemetry.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
		ctx, sampled := decider.Decide(r.Context(), parent)
		if !sampled {
			h.ServeHTTP(w, r)
			return
		}
		instrumented.ServeHTTP(w, r.WithContext(context.WithValue(ctx, routeKey{}, &route{})))
	})
}

// route is where the gateway leaves the route it matched, for the span name.
type route struct{ name string }

type routeKey struct{}

// nameSpan records the route the gateway matched on a traced request's span.
func nameSpan(r *http.Request) {
	rt, ok := r.Context().Value(routeKey{}).(*route)
	if !ok {
		return
	}
	if p, ok := runtime.HTTPPattern(r.Context()); ok {
		rt.name = strings.ReplaceAll(p.String(), "=*}", "}") // "{product_id=*}": any one segment
		trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("http.route", rt.name))
	}
}
