package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/buildinfo"
)

// httpResult is a response with its JSON object decoded.
type httpResult struct {
	code   int
	header http.Header
	body   map[string]any
}

// httpRaw sends body (JSON, may be empty) with an optional bearer token.
func httpRaw(t *testing.T, method, url, token string, body any) httpResult {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = strings.NewReader(string(raw))
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: body is not JSON: %q", method, url, raw)
		}
	}
	return httpResult{code: resp.StatusCode, header: resp.Header, body: out}
}

// httpDo is httpRaw for callers that need only the status and the body.
func httpDo(t *testing.T, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	r := httpRaw(t, method, url, token, body)
	return r.code, r.body
}

// reasonOf is the ErrorInfo reason in a grpc-gateway error body.
func reasonOf(body map[string]any) string {
	details, _ := body["details"].([]any)
	for _, d := range details {
		if m, _ := d.(map[string]any); m["@type"] == "type.googleapis.com/google.rpc.ErrorInfo" {
			r, _ := m["reason"].(string)
			return r
		}
	}
	return ""
}

func str(m map[string]any, path ...string) string {
	var cur any = m
	for _, p := range path {
		mm, _ := cur.(map[string]any)
		cur = mm[p]
	}
	s, _ := cur.(string)
	return s
}

// TestRESTStory walks the same story over REST, asserting statuses and JSON.
func TestRESTStory(t *testing.T) {
	for _, mode := range []string{"direct", "sync"} {
		t.Run(mode, func(t *testing.T) { testRESTStory(t, startServer(t, "ORDER_MODE="+mode)) })
	}
}

func testRESTStory(t *testing.T, s *testServer) {
	u := s.baseURL
	expect := func(gotCode int, body map[string]any, wantCode int, wantReason string) {
		t.Helper()
		if gotCode != wantCode {
			t.Fatalf("status = %d, want %d (body %v)", gotCode, wantCode, body)
		}
		if wantReason != "" && reasonOf(body) != wantReason {
			t.Fatalf("reason = %q, want %q (body %v)", reasonOf(body), wantReason, body)
		}
	}

	code, body := httpDo(t, "POST", u+"/v1/auth/register", "", map[string]string{"email": "carol@example.com", "password": "carol-password"})
	expect(code, body, 200, "")
	carol := str(body, "accessToken")
	if carol == "" || str(body, "user", "role") != "ROLE_CUSTOMER" {
		t.Fatalf("register body = %v", body)
	}
	code, body = httpDo(t, "POST", u+"/v1/auth/register", "", map[string]string{"email": "dave@example.com", "password": "dave-password"})
	expect(code, body, 200, "")
	dave := str(body, "accessToken")
	code, body = httpDo(t, "POST", u+"/v1/auth/register", "", map[string]string{"email": "x", "password": "y"})
	expect(code, body, 400, "")
	code, body = httpDo(t, "POST", u+"/v1/auth/register", "", `{"email": "broken json`)
	expect(code, body, 400, "")

	code, body = httpDo(t, "POST", u+"/v1/auth/login", "", map[string]string{"email": testAdminEmail, "password": testAdminPassword})
	expect(code, body, 200, "")
	admin := str(body, "accessToken")
	if exp, err := time.Parse(time.RFC3339, str(body, "expiresAt")); err != nil || !exp.After(time.Now()) || !strings.HasSuffix(str(body, "expiresAt"), "Z") {
		t.Errorf("expiresAt = %q, want a future RFC 3339 UTC time", str(body, "expiresAt"))
	}
	code, body = httpDo(t, "POST", u+"/v1/auth/login", "", map[string]string{"email": testAdminEmail, "password": "wrong-password"})
	expect(code, body, 401, "")

	product := map[string]any{"name": "Watch", "priceMinor": 25000, "currency": "USD", "quantity": 2}
	code, body = httpDo(t, "POST", u+"/v1/products", carol, product)
	expect(code, body, 403, "")
	code, body = httpDo(t, "POST", u+"/v1/products", tamper(admin), product)
	expect(code, body, 401, "")
	code, body = httpDo(t, "POST", u+"/v1/products", unsigned(admin), product)
	expect(code, body, 401, "")
	code, body = httpDo(t, "POST", u+"/v1/products", admin, product)
	expect(code, body, 200, "")
	watch := str(body, "product", "id")
	code, body = httpDo(t, "POST", u+"/v1/products", admin, map[string]any{"name": "Ring", "priceMinor": 900, "currency": "USD", "quantity": 3})
	expect(code, body, 200, "")
	ring := str(body, "product", "id")
	code, body = httpDo(t, "GET", u+"/v1/products/"+watch, "", nil)
	expect(code, body, 200, "")
	if str(body, "product", "name") != "Watch" {
		t.Errorf("get product = %v", body)
	}
	code, body = httpDo(t, "GET", u+"/v1/products/0190a8e4-0000-7000-8000-000000000000", "", nil)
	expect(code, body, 404, "")

	now := time.Now().UTC()
	code, body = httpDo(t, "POST", u+"/v1/flash-sales", admin, map[string]string{
		"productId": watch, "startsAt": now.Add(-time.Minute).Format(time.RFC3339), "endsAt": now.Add(time.Hour).Format(time.RFC3339),
	})
	expect(code, body, 200, "")
	saleID := str(body, "flashSale", "id")
	code, body = httpDo(t, "POST", u+"/v1/flash-sales", admin, map[string]string{
		"productId": ring, "startsAt": now.Add(time.Hour).Format(time.RFC3339), "endsAt": now.Add(2 * time.Hour).Format(time.RFC3339),
	})
	expect(code, body, 200, "")
	code, body = httpDo(t, "GET", u+"/v1/flash-sales/"+saleID, "", nil)
	expect(code, body, 200, "")
	if str(body, "flashSale", "state") != "SALE_STATE_ACTIVE" {
		t.Errorf("sale = %v", body)
	}

	code, body = httpDo(t, "POST", u+"/v1/products/"+watch+"/orders", carol, "{}")
	expect(code, body, 200, "")
	if str(body, "order", "status") != "ORDER_STATUS_CONFIRMED" || str(body, "order", "flashSaleId") != saleID {
		t.Errorf("order = %v", body)
	}
	orderID, orderTime := str(body, "order", "id"), str(body, "order", "createdAt")
	code, body = httpDo(t, "POST", u+"/v1/products/"+watch+"/orders", carol, "{}")
	expect(code, body, 409, "ALREADY_ORDERED")
	code, body = httpDo(t, "POST", u+"/v1/auth/register", "", map[string]string{"email": "erin@example.com", "password": "erin-password"})
	expect(code, body, 200, "")
	code, body = httpDo(t, "POST", u+"/v1/products/"+watch+"/orders", str(body, "accessToken"), "{}")
	expect(code, body, 200, "") // the last unit
	code, body = httpDo(t, "POST", u+"/v1/products/"+watch+"/orders", dave, "{}")
	expect(code, body, 400, "SOLD_OUT")
	code, body = httpDo(t, "POST", u+"/v1/products/"+ring+"/orders", dave, "{}")
	expect(code, body, 400, "SALE_NOT_ACTIVE")
	code, body = httpDo(t, "POST", u+"/v1/products/"+ring+"/orders", "", "{}")
	expect(code, body, 401, "")

	code, body = httpDo(t, "GET", u+"/v1/products/"+watch+"/sale-status", "", nil)
	expect(code, body, 200, "")
	if str(body, "state") != "SALE_STATE_SOLD_OUT" || body["remaining"] != float64(0) || !strings.HasSuffix(str(body, "serverTime"), "Z") {
		t.Errorf("sale status = %v", body)
	}
	code, body = httpDo(t, "GET", u+"/v1/products/"+watch+"/orders/mine", carol, nil)
	expect(code, body, 200, "")
	if body["secured"] != true || str(body, "order", "id") != orderID || str(body, "order", "createdAt") != orderTime {
		t.Errorf("carol check = %v, want order %s created at %s as acknowledged", body, orderID, orderTime)
	}
	code, body = httpDo(t, "GET", u+"/v1/products/"+watch+"/orders/mine", dave, nil)
	expect(code, body, 200, "")
	if body["secured"] != false {
		t.Errorf("dave check = %v", body)
	}

	// Dave cannot see Carol's order; the admin can.
	code, body = httpDo(t, "GET", u+"/v1/orders", dave, nil)
	expect(code, body, 200, "")
	if got, _ := body["orders"].([]any); len(got) != 0 {
		t.Errorf("dave sees orders %v", got)
	}
	code, body = httpDo(t, "GET", u+"/v1/orders?flashSaleId="+saleID, admin, nil)
	expect(code, body, 200, "")
	if got, _ := body["orders"].([]any); len(got) != 2 {
		t.Errorf("admin sees orders %v, want carol's and erin's", got)
	}
	code, body = httpDo(t, "GET", u+"/v1/flash-sales?states=SALE_STATE_UPCOMING", "", nil)
	expect(code, body, 200, "")
	if got, _ := body["flashSales"].([]any); len(got) != 1 {
		t.Errorf("upcoming sales = %v, want 1", got)
	}

	// The plain endpoints.
	for _, path := range []string{"/healthz", "/readyz", "/openapi.json", "/metrics"} {
		resp, err := http.Get(u + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s = %d", path, resp.StatusCode)
		}
	}
	code, body = httpDo(t, "GET", u+"/openapi.json", "", nil)
	paths, _ := body["paths"].(map[string]any)
	for _, p := range []string{"/v1/auth/register", "/v1/products/{productId}/orders", "/v1/products/{productId}/orders/mine", "/v1/flash-sales"} {
		if _, ok := paths[p]; !ok {
			t.Errorf("openapi.json lacks %s", p)
		}
	}
	// One document about the API, with the running build's version.
	info, _ := body["info"].(map[string]any)
	if info["title"] != "flashsale API" || info["version"] != buildinfo.String() {
		t.Errorf("openapi.json info = title %v, version %v; want flashsale API, %s", info["title"], info["version"], buildinfo.String())
	}
	if sec, _ := body["securityDefinitions"].(map[string]any); sec["bearer"] == nil {
		t.Errorf("openapi.json securityDefinitions = %v, want bearer", body["securityDefinitions"])
	}
	code, body = httpDo(t, "GET", u+"/v1/nothing-here", "", nil)
	expect(code, body, 404, "")
}
