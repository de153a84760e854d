package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
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

func newRouteTable(ctx context.Context, conn grpc.ClientConnInterface) (routeTable, error) {
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

// checkParams refuses path and query parameters that are not valid UTF-8,
// with InvalidArgument and a violation per parameter. The gateway would
// put them in a proto string field, which its gRPC client cannot marshal:
// the call failed as Internal, with grpc-go's own message. (What is valid
// UTF-8, a NUL included, goes on to the server, which checks every text
// field of every request.)
func checkParams(r *http.Request, path map[string]string) error {
	var bad []string
	for k, v := range path {
		if !utf8.ValidString(v) {
			bad = append(bad, k)
		}
	}
	if q, err := url.ParseQuery(r.URL.RawQuery); err == nil { // a malformed query is the gateway's to refuse
		for k, vs := range q {
			if !utf8.ValidString(k) || slices.ContainsFunc(vs, func(v string) bool { return !utf8.ValidString(v) }) {
				bad = append(bad, k)
			}
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	br := &errdetails.BadRequest{}
	for _, k := range bad {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field:       strings.ToValidUTF8(k, "\uFFFD"),
			Description: "must be valid UTF-8",
		})
	}
	st, err := status.New(codes.InvalidArgument, "invalid argument").WithDetails(br)
	if err != nil {
		return status.Error(codes.InvalidArgument, "invalid argument")
	}
	return st.Err()
}
