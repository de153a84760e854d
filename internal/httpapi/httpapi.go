// Package httpapi is the REST/JSON facade: the grpc-gateway mux calling the
// gRPC services in process (grpcapi.Channel, so REST passes the same
// interceptors as gRPC), its error handler, and the plain endpoints around
// it (/healthz, /readyz, /metrics, /openapi.json).
package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
	"github.com/flashsale/flashsale/gen/openapiv2"
	"github.com/flashsale/flashsale/internal/buildinfo"
	"github.com/flashsale/flashsale/internal/grpcapi"
	"github.com/flashsale/flashsale/internal/telemetry"
)

// MaxBodyBytes caps a request body.
const MaxBodyBytes = 1 << 20

// Checker is a dependency /readyz pings.
type Checker interface {
	Ping(ctx context.Context) error
}

// Deps is what the handler is built from.
type Deps struct {
	// Conn reaches the gRPC services; every /v1 call goes through it. The
	// server's grpcapi.Channel in production: the HTTP request then
	// travels with each call (grpcapi.WithHTTPRequest), for the client's
	// address and the trace.
	Conn  grpc.ClientConnInterface
	Ready map[string]Checker // name -> dependency, for /readyz
	// Draining, when set and true, fails /readyz whatever the
	// dependencies say: the server is shutting down.
	Draining func() bool
	Gatherer prometheus.Gatherer
	Log      *slog.Logger
	// UI, when set, is served at / for paths the API does not own.
	UI http.Handler
	// Pprof serves the runtime profiles under /debug/pprof/.
	Pprof bool
	// TracerProvider, when set, traces every /v1 request, continuing the
	// trace of a client that sends a W3C traceparent header; nil: no
	// tracing middleware at all. The server's spans of a traced request
	// are children of its span.
	TracerProvider trace.TracerProvider
	// Metrics, when set, gets flashsale_dependency_up: Ready pinged at
	// every scrape, so an alert sees what /readyz would answer.
	Metrics prometheus.Registerer
	// LogPerSecond bounds the lines a second that requests make the
	// handler write (LOG_ACCESS_PER_SECOND): /readyz's "not ready", which
	// anyone may call as often as they like while a dependency is down.
	// 0: every line.
	LogPerSecond int
}

// New returns the HTTP handler of the whole REST facade.
func New(ctx context.Context, d Deps) (http.Handler, error) {
	routes, err := newRouteTable(ctx, d.Conn)
	if err != nil {
		return nil, err
	}
	var gw *runtime.ServeMux
	var answers *canned
	marshaler := jsonMarshaler{&runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
	}}
	gw = runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, marshaler),
		runtime.WithErrorHandler(func(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
			if !answers.answer(ctx, m, w, err) {
				errorHandler(ctx, mux, m, w, r, err)
			}
		}),
		runtime.WithRoutingErrorHandler(routingErrorHandler(routes)),
		runtime.WithMiddlewares(func(next runtime.HandlerFunc) runtime.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
				nameSpan(r)
				if err := checkParams(r, params); err != nil {
					_, m := runtime.MarshalerForRequest(gw, r)
					errorHandler(r.Context(), gw, m, w, r, err)
					return
				}
				next(w, r.WithContext(grpcapi.WithHTTPRequest(r.Context(), r)), params)
			}
		}),
		runtime.WithStreamErrorHandler(streamErrorHandler),
		runtime.WithForwardResponseOption(httpCode),
		runtime.WithHealthEndpointAt(healthpb.NewHealthClient(d.Conn), "/healthz"),
		// Of the HTTP headers only Authorization becomes metadata (the
		// gateway passes it on by itself): the handlers read nothing else,
		// and a Grpc-Metadata-* header could otherwise set what they do.
		runtime.WithIncomingHeaderMatcher(func(string) (string, bool) { return "", false }),
	)
	answers = newCanned(gw, marshaler, errorHandler)
	if err := registerServices(ctx, gw, d.Conn); err != nil {
		return nil, err
	}

	if d.Metrics != nil {
		if err := d.Metrics.Register(newReadiness(d.Ready)); err != nil {
			return nil, fmt.Errorf("readiness metric: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", http.MaxBytesHandler(withWriter(gw), MaxBodyBytes))
	mux.Handle("GET /healthz", gw)
	mux.Handle("GET /readyz", readyz(d.Ready, d.Draining, d.Log, telemetry.NewLogBudget(d.Log, "readyz log", d.LogPerSecond)))
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if _, err := w.Write(openAPIDocument()); err != nil {
			logWriteError(r.Context(), d.Log, "/openapi.json", err)
		}
	})
	if d.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	if d.UI != nil {
		mux.Handle("/", d.UI) // any method: "GET /" would conflict with "/v1/"
	} else {
		mux.Handle("/", gw) // the gateway answers unknown paths with a JSON 404
	}
	return traced(mux, d.TracerProvider), nil
}

// registerServices puts the routes of the four services on mux.
func registerServices(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
	for _, err := range []error{
		flashsalev1.RegisterAuthServiceHandlerClient(ctx, mux, flashsalev1.NewAuthServiceClient(conn)),
		flashsalev1.RegisterProductServiceHandlerClient(ctx, mux, flashsalev1.NewProductServiceClient(conn)),
		flashsalev1.RegisterFlashSaleServiceHandlerClient(ctx, mux, flashsalev1.NewFlashSaleServiceClient(conn)),
		flashsalev1.RegisterOrderServiceHandlerClient(ctx, mux, flashsalev1.NewOrderServiceClient(conn)),
	} {
		if err != nil {
			return fmt.Errorf("register gateway: %w", err)
		}
	}
	return nil
}

// errorHandler is grpc-gateway's own, plus a Retry-After header when the
// status carries RetryInfo (queue busy, rate limited).
func errorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if st, ok := status.FromError(err); ok {
		setRetryAfter(w.Header(), st)
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// streamErrorHandler is grpc-gateway's own for a stream's error, plus the
// Retry-After header of errorHandler when the stream is refused before its
// first message (too many streams, rate limited): the gateway gives it no
// writer, so withWriter leaves one in the request's context.
func streamErrorHandler(ctx context.Context, err error) *status.Status {
	st := runtime.DefaultStreamErrorHandler(ctx, err)
	if w, ok := ctx.Value(writerKey{}).(http.ResponseWriter); ok {
		setRetryAfter(w.Header(), st) // too late, and harmless, once the stream has begun
	}
	return st
}

type writerKey struct{}

// withWriter puts the writer of a streaming call (the :watch routes) in
// its request's context, for streamErrorHandler; unary calls, the hot path,
// go through untouched.
func withWriter(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ":watch") {
			r = r.WithContext(context.WithValue(r.Context(), writerKey{}, w))
		}
		h.ServeHTTP(w, r)
	})
}

// setRetryAfter sets Retry-After, in whole seconds rounded up, from the
// status's RetryInfo, if it has one.
func setRetryAfter(h http.Header, st *status.Status) {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			secs := int(math.Ceil(ri.GetRetryDelay().AsDuration().Seconds()))
			h.Set("Retry-After", fmt.Sprint(max(secs, 1)))
		}
	}
}

// httpCode applies the status a handler asked for through the x-http-code
// response metadata (202 Accepted for a queued order) and keeps that
// metadata out of the HTTP headers.
func httpCode(ctx context.Context, w http.ResponseWriter, _ proto.Message) error {
	md, ok := runtime.ServerMetadataFromContext(ctx)
	if !ok {
		return nil
	}
	vals := md.HeaderMD.Get(grpcapi.HTTPCodeHeader)
	if len(vals) == 0 {
		return nil
	}
	delete(md.HeaderMD, grpcapi.HTTPCodeHeader)
	w.Header().Del("Grpc-Metadata-" + grpcapi.HTTPCodeHeader)
	code, err := strconv.Atoi(vals[0])
	if err != nil {
		return fmt.Errorf("bad %s %q: %w", grpcapi.HTTPCodeHeader, vals[0], err)
	}
	w.WriteHeader(code)
	return nil
}

// readyz answers 200 when every dependency answers a ping within a second,
// and 503 from the moment the server starts draining. It logs a failing
// dependency within budget.
func readyz(deps map[string]Checker, draining func() bool, log *slog.Logger, budget *telemetry.LogBudget) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		code, body := http.StatusOK, `{"status":"ok"}`
		if draining != nil && draining() {
			code, body = http.StatusServiceUnavailable, `{"status":"draining"}`
		} else {
			for name, c := range deps {
				if err := c.Ping(ctx); err != nil {
					if budget.Allow(slog.LevelWarn) {
						log.WarnContext(ctx, "not ready", "dependency", name, "err", err)
					}
					code, body = http.StatusServiceUnavailable, fmt.Sprintf(`{"status":"unavailable","dependency":%q}`, name)
					break
				}
			}
		}
		w.WriteHeader(code)
		if _, err := fmt.Fprintln(w, body); err != nil {
			logWriteError(ctx, log, "/readyz", err)
		}
	})
}

// readiness is flashsale_dependency_up: each dependency /readyz checks,
// pinged at every scrape.
type readiness struct {
	deps map[string]Checker
	up   *prometheus.Desc
}

func newReadiness(deps map[string]Checker) *readiness {
	return &readiness{deps: deps, up: prometheus.NewDesc("flashsale_dependency_up",
		"1 when a dependency /readyz checks answers within a second (postgres, redis, and in queue mode redis_aof: Redis keeping its append-only file), else 0.",
		[]string{"dependency"}, nil)}
}

func (r *readiness) Describe(ch chan<- *prometheus.Desc) { ch <- r.up }

func (r *readiness) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for name, dep := range r.deps {
		wg.Go(func() {
			v := 1.0
			if dep.Ping(ctx) != nil {
				v = 0
			}
			ch <- prometheus.MustNewConstMetric(r.up, prometheus.GaugeValue, v, name)
		})
	}
	wg.Wait()
}

// logWriteError logs a response that could not be written, at debug: the
// client has gone, and there is no one left to tell.
func logWriteError(ctx context.Context, log *slog.Logger, path string, err error) {
	log.DebugContext(ctx, "response not written", "path", path, "err", err)
}

// openAPIDocument is the generated OpenAPI document with info.version set to
// this build's version: the proto options can only hold a placeholder.
var openAPIDocument = sync.OnceValue(func() []byte {
	b, err := withVersion(openapiv2.JSON, buildinfo.String())
	if err != nil {
		return openapiv2.JSON // a test keeps the generated document decodable
	}
	return b
})

// withVersion returns the OpenAPI document doc with info.version set to v.
func withVersion(doc []byte, v string) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return nil, err
	}
	var info map[string]json.RawMessage
	if err := json.Unmarshal(top["info"], &info); err != nil {
		return nil, err
	}
	info["version"], _ = json.Marshal(v)
	var err error
	if top["info"], err = json.Marshal(info); err != nil {
		return nil, err
	}
	return json.MarshalIndent(top, "", "  ")
}
