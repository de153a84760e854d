package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/grpcapi"
)

// noAuth refuses every token and every sign-up: the tests here never get
// past routing and validation.
type noAuth struct{}

func (noAuth) Register(context.Context, string, string) (auth.User, string, time.Time, error) {
	return auth.User{}, "", time.Time{}, errors.New("not in this test")
}

func (noAuth) Login(context.Context, string, string) (auth.User, string, time.Time, error) {
	return auth.User{}, "", time.Time{}, errors.New("not in this test")
}

func (noAuth) Authenticate(context.Context, string) (auth.Caller, error) {
	return auth.Caller{}, auth.ErrUnauthenticated
}

// newGateway serves the REST facade over a real gRPC server's in-process
// channel (with no stores) and returns its base URL.
func newGateway(t *testing.T) string {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	srv := grpcapi.NewServer(grpcapi.Deps{Auth: noAuth{}, Log: log, Metrics: prometheus.NewRegistry(), Now: time.Now})
	h, err := New(t.Context(), Deps{Conn: srv.Channel, Gatherer: prometheus.NewRegistry(), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

type response struct {
	code   int
	header http.Header
	body   struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Details []struct {
			FieldViolations []struct {
				Field       string `json:"field"`
				Description string `json:"description"`
			} `json:"fieldViolations"`
		} `json:"details"`
	}
}

func do(t *testing.T, method, url string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{code: resp.StatusCode, header: resp.Header}
	if method != http.MethodHead {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("%s %s: body %q is not a JSON status: %v", method, url, raw, err)
		}
	}
	return r
}

// TestMethodNotAllowed: a route asked with a method it does not take is
// 405 with an Allow header naming the methods it does (it was 501, which
// says the server cannot do the method anywhere, with no Allow); an unknown
// path stays 404, and a route asked rightly is still served.
func TestMethodNotAllowed(t *testing.T) {
	base := newGateway(t)
	const id = "0190a8e4-3c5e-7000-8000-00000000002a"
	tests := []struct {
		method, path, allow string
	}{
		{"PUT", "/v1/products", "GET, POST"},
		{"DELETE", "/v1/products", "GET, POST"},
		{"HEAD", "/v1/products", "GET, POST"},
		{"DELETE", "/v1/products/" + id, "GET"},
		{"PATCH", "/v1/products/" + id, "GET"},
		{"GET", "/v1/auth/login", "POST"},
		{"GET", "/v1/auth/register", "POST"},
		{"PUT", "/v1/flash-sales", "GET, POST"},
		{"DELETE", "/v1/flash-sales/" + id, "GET"},
		// GET routes here too: to GetFlashSale, whose {id} takes "<id>:reconcile"
		// whole (and refuses it as an id). Allow says what the gateway routes.
		{"DELETE", "/v1/flash-sales/" + id + ":reconcile", "GET, POST"},
		{"POST", "/v1/products/" + id + "/sale-status", "GET"},
		{"POST", "/v1/products/" + id + "/sale-status:watch", "GET"},
		{"GET", "/v1/products/" + id + "/orders", "POST"},
		{"POST", "/v1/products/" + id + "/orders/mine", "GET"},
		{"POST", "/v1/orders", "GET"},
	}
	for _, tt := range tests {
		r := do(t, tt.method, base+tt.path)
		if r.code != http.StatusMethodNotAllowed || r.header.Get("Allow") != tt.allow {
			t.Errorf("%s %s = %d, Allow %q; want 405, Allow %q", tt.method, tt.path, r.code, r.header.Get("Allow"), tt.allow)
		}
		if tt.method != http.MethodHead && r.body.Code != 12 { // Unimplemented, as gRPC says it
			t.Errorf("%s %s body code = %d, want 12", tt.method, tt.path, r.body.Code)
		}
	}
	if r := do(t, "GET", base+"/v1/no-such-thing"); r.code != http.StatusNotFound || r.header.Get("Allow") != "" {
		t.Errorf("GET /v1/no-such-thing = %d, Allow %q; want 404 and no Allow", r.code, r.header.Get("Allow"))
	}
	if r := do(t, "GET", base+"/v1/products/not-an-id"); r.code != http.StatusBadRequest {
		t.Errorf("GET /v1/products/not-an-id = %d, want 400 from the server", r.code)
	}
}

// TestParamsNotUTF8: a path or query parameter that is not UTF-8 is 400
// with a violation on it. The gateway's gRPC client cannot marshal it into
// the request, and it answered 500 with grpc-go's marshalling error.
func TestParamsNotUTF8(t *testing.T) {
	base := newGateway(t)
	tests := []struct {
		path, field string
	}{
		{"/v1/products/%FF", "id"},
		{"/v1/flash-sales/caf%C3", "id"},
		{"/v1/products/%FF/sale-status", "product_id"},
		{"/v1/products?pageToken=%FF", "pageToken"},
		{"/v1/flash-sales?page_token=%ED%A0%80", "page_token"},
		{"/v1/orders?flashSaleId=%FF", "flashSaleId"},
	}
	for _, tt := range tests {
		r := do(t, "GET", base+tt.path)
		var fields []string
		for _, d := range r.body.Details {
			for _, v := range d.FieldViolations {
				fields = append(fields, v.Field)
			}
		}
		if r.code != http.StatusBadRequest || strings.Join(fields, ",") != tt.field {
			t.Errorf("GET %s = %d %q with violations on %v; want 400 with one on %s", tt.path, r.code, r.body.Message, fields, tt.field)
		}
		if strings.Contains(r.body.Message, "grpc") || strings.Contains(r.body.Message, ":") {
			t.Errorf("GET %s message %q carries an internal error", tt.path, r.body.Message)
		}
	}
}
