package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/product"
	"github.com/flashsale/flashsale/internal/sale"
)

// causeID is the id the wrappers below put in an error's chain, as the
// domain does ("login: user <id>: ..."); it must never reach a client.
const causeID = "0190a8e4-dead-7000-8000-00000000beef"

// wrappers put context around an error the way the domain and the stores
// do; none may change what the client is told.
var wrappers = []struct {
	name string
	wrap func(error) error
}{
	{"op prefix", func(err error) error { return fmt.Errorf("register: %w", err) }},
	{"op and id prefix", func(err error) error { return fmt.Errorf("login: user %s: %w", causeID, err) }},
	{"suffix", func(err error) error { return fmt.Errorf("%w: user %s not found", err, causeID) }},
	{"store and SQL", func(err error) error {
		return fmt.Errorf("postgres: order insert batch: %w (ERROR: insert into orders violates constraint; SQLSTATE 23505)", err)
	}},
	{"joined", func(err error) error { return errors.Join(err, errors.New("redis: gate admit: EOF")) }},
	{"two layers", func(err error) error { return fmt.Errorf("place: %w", fmt.Errorf("gate admit: %w", err)) }},
}

// domainErrors is every error the domain and the transport hand to
// toStatus: each package's sentinels and error types, unreachable
// dependencies, statuses, and causes toStatus does not know.
func domainErrors() []error {
	id := uuid.MustParse("0190a8e4-0000-7000-8000-00000000002a")
	return []error{
		auth.ErrInvalidCredentials, auth.ErrEmailTaken, auth.ErrUserNotFound,
		auth.ErrUnauthenticated, auth.ErrPermissionDenied, auth.ErrMalformedHash,
		&auth.ValidationError{Violations: []auth.FieldViolation{{Field: "email", Description: "email is required"}}},
		sale.ErrNotFound, sale.ErrInvalidWindow, sale.ErrEndsInPast, sale.ErrOverlap,
		product.ErrNotFound,
		order.ErrSaleNotActive, order.ErrSoldOut, order.ErrAlreadyOrdered, order.ErrNotFound,
		order.ErrOutcomeUnknown, order.ErrInProgress, order.ErrUnavailable, order.ErrNotStored,
		order.ErrBatcherClosed,
		&order.AlreadyOrderedError{OrderID: id},
		&order.OrderError{Err: order.ErrOutcomeUnknown, OrderID: id},
		&order.OrderError{Err: order.ErrInProgress, OrderID: id},
		&order.BusyError{RetryAfter: 2 * time.Second},
		&order.BatchError{Err: errors.New("conn closed")},
		fmt.Errorf("%w: %w", order.ErrUnavailable, &order.OrderError{Err: order.ErrOutcomeUnknown, OrderID: id}),
		(&fieldErrors{{Field: "name", Description: "is required"}}).err(),
		&rateLimited{scope: "ip", retryAfter: time.Second},
		downError{},
		&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")},
		context.Canceled, context.DeadlineExceeded,
		status.Error(codes.Unavailable, "queue busy"),
		errors.New("ERROR: invalid byte sequence for encoding \"UTF8\": 0x00 (SQLSTATE 22021)"),
		errors.New("pgx: select quantity from products: relation does not exist"),
	}
}

// leaks lists what in a client-facing message belongs to the server: a
// chain of wrapped errors ("op: cause", as in "register: email already
// registered"), a package or dependency name, SQL or driver text, an id
// from the cause.
func leaks(msg string) []string {
	var out []string
	if strings.Contains(msg, ": ") {
		out = append(out, `a ": " chain`)
	}
	lower := strings.ToLower(msg)
	for _, mark := range []string{
		"postgres", "pgx", "pgconn", "sqlstate", "insert", "select", "relation", "violates", "constraint",
		"redis", "rueidis", "eof", "grpc", "rpc error", "desc =", "dial", "tcp", "conn closed",
		"order batch", "batcher", "not stored", "malformed", "%!", "\n", strings.ToLower(causeID),
	} {
		if strings.Contains(lower, mark) {
			out = append(out, fmt.Sprintf("%q", mark))
		}
	}
	return out
}

// TestClientMessagesCarryNoInternals: whatever the domain wraps an error
// in, toStatus answers with the code and message of the bare error, and no
// message carries a wrapped chain, a package or dependency name, SQL or an
// id from the cause. (The email-taken answer was "register: email already
// registered".)
func TestClientMessagesCarryNoInternals(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	for _, err := range domainErrors() {
		bare := status.Convert(toStatus(ctx, log, err))
		if l := leaks(bare.Message()); len(l) > 0 {
			t.Errorf("toStatus(%q) message %q carries %s", err, bare.Message(), strings.Join(l, ", "))
		}
		for _, w := range wrappers {
			wrapped := w.wrap(err)
			got := status.Convert(toStatus(ctx, log, wrapped))
			if got.Code() != bare.Code() || got.Message() != bare.Message() {
				t.Errorf("toStatus(%q) = %v %q, want %v %q as for the bare error", wrapped, got.Code(), got.Message(), bare.Code(), bare.Message())
			}
			if l := leaks(got.Message()); len(l) > 0 {
				t.Errorf("toStatus(%q) message %q carries %s", wrapped, got.Message(), strings.Join(l, ", "))
			}
		}
	}
}

// memUsers is an in-memory auth.UserStore; a second account with an email
// is auth.ErrEmailTaken, as PostgreSQL's unique constraint maps it.
type memUsers struct {
	mu    sync.Mutex
	users map[string]auth.User
	hash  map[string]string
}

func (m *memUsers) UserCreate(_ context.Context, u auth.User, hash string) (auth.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[u.Email]; ok {
		return auth.User{}, auth.ErrEmailTaken
	}
	m.users[u.Email], m.hash[u.Email] = u, hash
	return u, nil
}

func (m *memUsers) UserByEmail(_ context.Context, email string) (auth.User, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[email]
	if !ok {
		return auth.User{}, "", auth.ErrUserNotFound
	}
	return u, m.hash[email], nil
}

func (m *memUsers) UserStanding(context.Context, uuid.UUID) (auth.Standing, error) {
	return auth.Standing{}, errors.New("not in this test")
}

func (m *memUsers) UserUpsertAdmin(context.Context, uuid.UUID, string, string) (auth.User, error) {
	return auth.User{}, errors.New("not in this test")
}

// signUpAuth signs up and in with the real auth.Service; tokens are
// tokenAuth's.
type signUpAuth struct{ *auth.Service }

func (signUpAuth) Authenticate(ctx context.Context, token string) (auth.Caller, error) {
	return tokenAuth{}.Authenticate(ctx, token)
}

// failingStore fails every call with err, wrapped as a store wraps it.
type failingStore struct{ err error }

func (f failingStore) fail(op string) error {
	return fmt.Errorf("postgres: %s %s: %w", op, causeID, f.err)
}

func (f failingStore) ProductCreate(context.Context, product.Product) (product.Product, error) {
	return product.Product{}, f.fail("product create")
}

func (f failingStore) ProductGet(context.Context, uuid.UUID) (product.Product, error) {
	return product.Product{}, f.fail("product get")
}

func (f failingStore) ProductList(context.Context, uuid.UUID, int) ([]product.Product, error) {
	return nil, f.fail("product list")
}

func (f failingStore) SaleCreate(context.Context, sale.Sale) (sale.Sale, error) {
	return sale.Sale{}, f.fail("sale create")
}

func (f failingStore) SaleGet(context.Context, uuid.UUID) (sale.Sale, error) {
	return sale.Sale{}, f.fail("sale get")
}

func (f failingStore) SalesByProduct(context.Context, uuid.UUID) ([]sale.Sale, error) {
	return nil, f.fail("sales by product")
}

func (f failingStore) SaleList(context.Context, sale.ListFilter) ([]sale.Sale, error) {
	return nil, f.fail("sale list")
}

func (f failingStore) Place(context.Context, uuid.UUID, uuid.UUID) (order.Order, error) {
	return order.Order{}, f.fail("place")
}

func (f failingStore) Check(context.Context, uuid.UUID, uuid.UUID) (sale.Sale, order.Order, bool, error) {
	return sale.Sale{}, order.Order{}, false, f.fail("check")
}

func (f failingStore) List(context.Context, order.ListFilter) ([]order.Order, error) {
	return nil, f.fail("order list")
}

func (f failingStore) CreateSale(context.Context, sale.Sale) (sale.Sale, error) {
	return sale.Sale{}, f.fail("create sale")
}

func (f failingStore) SaleStatus(context.Context, uuid.UUID) (order.SaleStatus, error) {
	return order.SaleStatus{}, f.fail("sale status")
}

func (f failingStore) Reconcile(context.Context, uuid.UUID) (int, int, error) {
	return 0, 0, f.fail("reconcile")
}

// TestServerMessagesCarryNoInternals: through the real server, signing up
// with a taken email, signing in wrongly, and every other method with a
// store that fails with each domain error (wrapped, as stores do) answer
// messages with nothing of the server's in them.
func TestServerMessagesCarryNoInternals(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	users := &memUsers{users: map[string]auth.User{}, hash: map[string]string{}}
	authn := signUpAuth{Service: auth.NewService(users, auth.NewTokens([]byte(strings.Repeat("k", 32)), time.Hour, nil), nil, nil)}
	check := func(what string, err error, want codes.Code) {
		t.Helper()
		st := status.Convert(err)
		if st.Code() != want {
			t.Errorf("%s = %v %q, want %v", what, st.Code(), st.Message(), want)
		}
		if l := leaks(st.Message()); len(l) > 0 {
			t.Errorf("%s message %q carries %s", what, st.Message(), strings.Join(l, ", "))
		}
	}

	conn := serve(t, NewServer(Deps{Auth: authn, Log: log, Metrics: prometheus.NewRegistry(), Now: time.Now}))
	authc := flashsalev1.NewAuthServiceClient(conn)
	creds := &flashsalev1.RegisterRequest{Email: "taken@example.com", Password: "long-enough-password"}
	if _, err := authc.Register(t.Context(), creds); err != nil {
		t.Fatalf("first Register: %v", err)
	}
	_, err := authc.Register(t.Context(), creds)
	check("Register with a taken email", err, codes.AlreadyExists)
	if got, want := status.Convert(err).Message(), auth.ErrEmailTaken.Error(); got != want {
		t.Errorf("Register with a taken email: message %q, want %q", got, want)
	}
	_, err = authc.Register(t.Context(), &flashsalev1.RegisterRequest{Email: "not an email", Password: "x"})
	check("Register with bad input", err, codes.InvalidArgument)
	_, err = authc.Login(t.Context(), &flashsalev1.LoginRequest{Email: creds.Email, Password: "wrong-password"})
	check("Login with a wrong password", err, codes.Unauthenticated)
	_, err = authc.Login(t.Context(), &flashsalev1.LoginRequest{Email: "nobody@example.com", Password: "whatever-password"})
	check("Login with an unknown email", err, codes.Unauthenticated)

	id := uuid.NewString()
	start := timestamppb.New(time.Now().Add(time.Hour))
	end := timestamppb.New(time.Now().Add(2 * time.Hour))
	for _, domainErr := range domainErrors() {
		store := failingStore{err: domainErr}
		want := status.Code(toStatus(context.Background(), log, domainErr))
		conn := serve(t, NewServer(Deps{
			Auth: tokenAuth{}, Products: store, Sales: store, SaleService: store, Orders: store, Reconciler: store,
			Log: log, Metrics: prometheus.NewRegistry(), Now: time.Now,
		}))
		admin, customer := withToken(t.Context(), "admin"), withToken(t.Context(), "customer")
		products := flashsalev1.NewProductServiceClient(conn)
		sales := flashsalev1.NewFlashSaleServiceClient(conn)
		orders := flashsalev1.NewOrderServiceClient(conn)
		calls := map[string]func() error{
			"CreateProduct": func() error {
				_, err := products.CreateProduct(admin, &flashsalev1.CreateProductRequest{Name: "Shoe", PriceMinor: 1, Currency: "EUR", Quantity: 1})
				return err
			},
			"GetProduct": func() error {
				_, err := products.GetProduct(customer, &flashsalev1.GetProductRequest{Id: id})
				return err
			},
			"ListProducts": func() error {
				_, err := products.ListProducts(customer, &flashsalev1.ListProductsRequest{})
				return err
			},
			"CreateFlashSale": func() error {
				_, err := sales.CreateFlashSale(admin, &flashsalev1.CreateFlashSaleRequest{ProductId: id, StartsAt: start, EndsAt: end})
				return err
			},
			"GetFlashSale": func() error {
				_, err := sales.GetFlashSale(customer, &flashsalev1.GetFlashSaleRequest{Id: id})
				return err
			},
			"ListFlashSales": func() error {
				_, err := sales.ListFlashSales(customer, &flashsalev1.ListFlashSalesRequest{})
				return err
			},
			"GetSaleStatus": func() error {
				_, err := sales.GetSaleStatus(customer, &flashsalev1.GetSaleStatusRequest{ProductId: id})
				return err
			},
			"WatchSaleStatus": func() error {
				stream, err := sales.WatchSaleStatus(customer, &flashsalev1.WatchSaleStatusRequest{ProductId: id})
				if err != nil {
					return err
				}
				_, err = stream.Recv()
				return err
			},
			"ReconcileSale": func() error {
				_, err := sales.ReconcileSale(admin, &flashsalev1.ReconcileSaleRequest{Id: id})
				return err
			},
			"PlaceOrder": func() error {
				_, err := orders.PlaceOrder(customer, &flashsalev1.PlaceOrderRequest{ProductId: id})
				return err
			},
			"CheckOrder": func() error {
				_, err := orders.CheckOrder(customer, &flashsalev1.CheckOrderRequest{ProductId: id})
				return err
			},
			"ListOrders": func() error {
				_, err := orders.ListOrders(customer, &flashsalev1.ListOrdersRequest{FlashSaleId: id})
				return err
			},
		}
		for name, call := range calls {
			check(fmt.Sprintf("%s failing with %q", name, domainErr), call(), want)
		}
	}
}
