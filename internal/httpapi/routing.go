package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// routeMethods are the methods a route can be asked for by Allow.
var routeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// routeTable knows which methods the gateway routes for a path. It is a
// second gateway mux with the same registrations, whose handlers only
// report that they matched: asking it applies the gateway's own matching
// (path variables, verbs such as ":reconcile"), so Allow cannot drift from
// the routes, and no call is made.
type routeTable struct {
	mux *runtime.ServeMux
}

func newRouteTable(ctx context.Context, conn *grpc.ClientConn) (routeTable, error) {
	mux := runtime.NewServeMux(
		runtime.WithMiddlewares(func(runtime.HandlerFunc) runtime.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
				w.WriteHeader(http.StatusNoContent)
			}
		}),
		runtime.WithRoutingErrorHandler(func(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, _ *http.Request, code int) {
			w.WriteHeader(code)
		}),
	)
	return routeTable{mux: mux}, registerServices(ctx, mux, conn)
}

// allowed lists the methods routed for r's path, in routeMethods' order.
func (t routeTable) allowed(r *http.Request) []string {
	var out []string
	for _, m := range routeMethods {
		probe, err := http.NewRequestWithContext(r.Context(), m, r.URL.String(), http.NoBody)
		if err != nil {
			continue
		}
		var rec matchRecorder
		t.mux.ServeHTTP(&rec, probe)
		if rec.code == http.StatusNoContent {
			out = append(out, m)
		}
	}
	return out
}

// matchRecorder keeps only the status a routeTable lookup wrote.
type matchRecorder struct {
	header http.Header
	code   int
}

func (m *matchRecorder) Header() http.Header {
	if m.header == nil {
		m.header = http.Header{}
	}
	return m.header
}
func (m *matchRecorder) Write(p []byte) (int, error) { return len(p), nil }
func (m *matchRecorder) WriteHeader(code int)        { m.code = code }

// routingErrorHandler answers a path the gateway routes, asked with a
// method it does not route there, 405 Method Not Allowed with an Allow
// header naming the methods it does (RFC 9110, 15.5.6); grpc-gateway's
// default answers 501 Not Implemented, which says the server cannot do the
// method for any resource. The body stays the JSON status (code
// Unimplemented, as for gRPC). Other routing errors keep the default.
func routingErrorHandler(routes routeTable) runtime.RoutingErrorHandlerFunc {
	return func(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, code int) {
		if code != http.StatusMethodNotAllowed {
			runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, code)
			return
		}
		allowed := routes.allowed(r)
		if len(allowed) == 0 { // cannot happen: the gateway found the path under some method
			runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, code)
			return
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		errorHandler(ctx, mux, m, w, r, &runtime.HTTPStatusError{
			HTTPStatus: http.StatusMethodNotAllowed,
			Err:        status.Error(codes.Unimplemented, http.StatusText(http.StatusMethodNotAllowed)),
		})
	}
}
