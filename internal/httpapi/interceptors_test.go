package httpapi

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/grpcapi"
	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testenv"
)

// The REST facade calls the gRPC services in process (grpcapi.Channel):
// these tests check, through HTTP only, that every interceptor the gRPC
// server runs runs for REST too: authentication, per-IP rate limits (with
// the HTTP client's address), the access log, metrics, panic recovery and
// the default deadline, for unary calls and for the watch stream.

// tokenAuth accepts the bearer token "good" as a customer.
type tokenAuth struct{ noAuth }

var customerID = uuid.MustParse("0b5e6c1e-0000-4000-8000-000000000001")

func (tokenAuth) Authenticate(_ context.Context, token string) (auth.Caller, error) {
	if token == "good" {
		return auth.Caller{UserID: customerID, Role: auth.RoleCustomer}, nil
	}
	return auth.Caller{}, auth.ErrUnauthenticated
}

// Products fakeOrders treats apart: it panics on panicProduct, and
// answers what its refuse map says.
var (
	panicProduct   = uuid.MustParse("0b5e6c1e-0000-4000-8000-0000000000ff")
	soldOutProduct = uuid.MustParse("0b5e6c1e-0000-4000-8000-0000000000fe")
	heldProduct    = uuid.MustParse("0b5e6c1e-0000-4000-8000-0000000000fd")
)

// fakeOrders queues every order, and remembers whether each call had a
// deadline.
type fakeOrders struct {
	mu          sync.Mutex
	calls       int
	noDeadlines int
	refuse      map[uuid.UUID]error
}

func (f *fakeOrders) Place(ctx context.Context, userID, productID uuid.UUID) (order.Order, error) {
	if productID == panicProduct {
		panic("fake orders: asked to panic")
	}
	if err := f.refuse[productID]; err != nil {
		return order.Order{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if _, ok := ctx.Deadline(); !ok {
		f.noDeadlines++
	}
	return order.Order{ID: uuid.New(), ProductID: productID, UserID: userID, Status: order.StatusPending, CreatedAt: time.Now()}, nil
}

func (f *fakeOrders) Check(context.Context, uuid.UUID, uuid.UUID) (sale.Sale, order.Order, bool, error) {
	return sale.Sale{}, order.Order{}, false, errors.New("not in this test")
}

func (f *fakeOrders) List(context.Context, order.ListFilter) ([]order.Order, error) {
	return nil, errors.New("not in this test")
}

// fakeSales answers every product's status with an open sale.
type fakeSales struct{}

func (fakeSales) CreateSale(context.Context, sale.Sale) (sale.Sale, error) {
	return sale.Sale{}, errors.New("not in this test")
}

func (fakeSales) SaleStatus(_ context.Context, productID uuid.UUID) (order.SaleStatus, error) {
	now := time.Now().UTC()
	return order.SaleStatus{
		Sale:      sale.Sale{ID: uuid.New(), ProductID: productID, StartsAt: now.Add(-time.Minute), EndsAt: now.Add(time.Hour)},
		State:     sale.StateActive,
		Remaining: 7,
		At:        now,
	}, nil
}

type restChain struct {
	url     string
	orders  *fakeOrders
	log     *testenv.Buffer
	metrics *prometheus.Registry
}

// newRESTChain serves REST over a gRPC server with rate limits (3 calls per
// client address, no refill to speak of), trusting loopback as a proxy so
// that X-Forwarded-For names the client, and an access log at info.
func newRESTChain(t *testing.T) restChain {
	t.Helper()
	c := restChain{orders: &fakeOrders{}, log: &testenv.Buffer{}, metrics: prometheus.NewRegistry()}
	log := slog.New(slog.NewJSONHandler(c.log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv := grpcapi.NewServer(grpcapi.Deps{
		Auth: tokenAuth{}, Orders: c.orders, SaleService: fakeSales{},
		Log: log, Metrics: c.metrics, Now: time.Now,
		ClientIP: grpcapi.NewClientIP([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}),
		Limits:   &grpcapi.Limits{GlobalCapacity: 1000, GlobalRefill: 1000, IPCapacity: 3, IPRefill: 0.001},
	})
	h, err := New(t.Context(), Deps{Conn: srv.Channel, Gatherer: c.metrics, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	c.url = ts.URL
	return c
}

func (c restChain) do(t *testing.T, method, path, client, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, c.url+path, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", client)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestRESTPassesAuthentication(t *testing.T) {
	c := newRESTChain(t)
	product := "/v1/products/" + uuid.NewString() + "/orders"
	for name, token := range map[string]string{"no token": "", "bad token": "forged"} {
		resp, body := c.do(t, http.MethodPost, product, "192.0.2.1", token)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %d %s, want 401", name, resp.StatusCode, body)
		}
	}
	resp, body := c.do(t, http.MethodPost, product, "192.0.2.2", "good")
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(body, `"ORDER_STATUS_PENDING"`) {
		t.Errorf("good token: %d %s, want 202 with a pending order", resp.StatusCode, body)
	}
	if c.orders.calls != 1 {
		t.Errorf("orders placed = %d, want only the authenticated one", c.orders.calls)
	}
}

func TestRESTPassesRateLimitsByHTTPClient(t *testing.T) {
	c := newRESTChain(t)
	product := "/v1/products/" + uuid.NewString() + "/orders"
	for i := range 3 {
		if resp, body := c.do(t, http.MethodPost, product, "198.51.100.7", "good"); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("call %d of the bucket: %d %s", i+1, resp.StatusCode, body)
		}
	}
	resp, body := c.do(t, http.MethodPost, product, "198.51.100.7", "good")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "RetryInfo") {
		t.Errorf("4th call from one client: %d Retry-After=%q %s, want 429 with Retry-After and RetryInfo", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// The stream opens through the same per-IP bucket.
	watch := "/v1/products/" + uuid.NewString() + "/sale-status:watch"
	if resp, body := c.do(t, http.MethodGet, watch, "198.51.100.7", ""); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("watch from the exhausted client: %d %s, want 429", resp.StatusCode, body)
	}
	// Another HTTP client has a bucket of its own: the limiter saw the
	// HTTP client's address, not the gateway's.
	if resp, body := c.do(t, http.MethodPost, product, "198.51.100.8", "good"); resp.StatusCode != http.StatusAccepted {
		t.Errorf("another client: %d %s, want 202", resp.StatusCode, body)
	}
	// A Grpc-Metadata header cannot pose as another client.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, c.url+product, strings.NewReader("{}"))
	req.Header.Set("X-Forwarded-For", "198.51.100.7")
	req.Header.Set("Grpc-Metadata-X-Forwarded-For", "203.0.113.50")
	req.Header.Set("Authorization", "Bearer good")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusTooManyRequests {
		t.Errorf("exhausted client with forged metadata: %d, want 429", resp2.StatusCode)
	}
}

func TestRESTPassesAccessLogMetricsRecoveryAndDeadline(t *testing.T) {
	c := newRESTChain(t)
	if resp, body := c.do(t, http.MethodPost, "/v1/products/"+uuid.NewString()+"/orders", "192.0.2.10", "good"); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("order: %d %s", resp.StatusCode, body)
	}
	if c.orders.noDeadlines != 0 {
		t.Error("a REST call reached the handler without a deadline")
	}
	resp, body := c.do(t, http.MethodPost, "/v1/products/"+panicProduct.String()+"/orders", "192.0.2.11", "good")
	if resp.StatusCode != http.StatusInternalServerError || strings.Contains(body, "asked to panic") {
		t.Errorf("panicking handler: %d %s, want 500 without the panic's text", resp.StatusCode, body)
	}

	lines := c.log.Lines()
	if !hasLine(lines, "panic in handler", "PlaceOrder") {
		t.Errorf("no panic logged with its method; log:\n%s", strings.Join(lines, "\n"))
	}
	if !hasLine(lines, "finished call", "PlaceOrder") {
		t.Errorf("no access-log line for the REST PlaceOrder; log:\n%s", strings.Join(lines, "\n"))
	}

	handled := map[string]float64{}
	mfs, err := c.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "grpc_server_handled_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label(m, "grpc_method") == "PlaceOrder" {
				handled[label(m, "grpc_code")] += m.GetCounter().GetValue()
			}
		}
	}
	if handled["OK"] != 1 || handled["Internal"] != 1 {
		t.Errorf("grpc_server_handled_total for PlaceOrder = %v, want OK 1 and Internal 1", handled)
	}
}

func TestRESTWatchStreams(t *testing.T) {
	c := newRESTChain(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/v1/products/"+uuid.NewString()+"/sale-status:watch", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("watch: %d", resp.StatusCode)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(line, `"remaining":7`) || !strings.Contains(line, "SALE_STATE_ACTIVE") {
		t.Errorf("first message = %s, want the sale's status", line)
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func hasLine(lines []string, parts ...string) bool {
	for _, l := range lines {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return true
		}
	}
	return false
}
