package main

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
)

func bearer(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// wantStatus checks an RPC error's code and, when reason is set, its ErrorInfo reason.
func wantStatus(t *testing.T, err error, code codes.Code, reason string) *status.Status {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code {
		t.Fatalf("code = %v (%q), want %v", st.Code(), st.Message(), code)
	}
	if reason != "" {
		var got string
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok {
				got = info.GetReason()
			}
		}
		if got != reason {
			t.Fatalf("reason = %q, want %q", got, reason)
		}
	}
	return st
}

func fieldViolations(st *status.Status) []string {
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return fields
}

// TestGRPCStory walks the whole API over gRPC with the generated clients.
func TestGRPCStory(t *testing.T) {
	for _, mode := range []string{"direct", "sync"} {
		t.Run(mode, func(t *testing.T) { testGRPCStory(t, startServer(t, "ORDER_MODE="+mode)) })
	}
}

func testGRPCStory(t *testing.T, s *testServer) {
	ctx := t.Context()
	authc := flashsalev1.NewAuthServiceClient(s.conn)
	products := flashsalev1.NewProductServiceClient(s.conn)
	sales := flashsalev1.NewFlashSaleServiceClient(s.conn)
	orders := flashsalev1.NewOrderServiceClient(s.conn)

	// Sign up two customers; the admin comes from configuration.
	alice, err := authc.Register(ctx, &flashsalev1.RegisterRequest{Email: " Alice@Example.com ", Password: "alice-password"})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if alice.GetUser().GetEmail() != "alice@example.com" || alice.GetUser().GetRole() != flashsalev1.Role_ROLE_CUSTOMER {
		t.Errorf("registered user = %v, want alice@example.com as CUSTOMER", alice.GetUser())
	}
	bob, err := authc.Register(ctx, &flashsalev1.RegisterRequest{Email: "bob@example.com", Password: "bob-password"})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	_, err = authc.Register(ctx, &flashsalev1.RegisterRequest{Email: "alice@example.com", Password: "another-password"})
	wantStatus(t, err, codes.AlreadyExists, "EMAIL_TAKEN")
	_, err = authc.Register(ctx, &flashsalev1.RegisterRequest{Email: "not-an-email", Password: "short"})
	st := wantStatus(t, err, codes.InvalidArgument, "")
	if got := strings.Join(fieldViolations(st), ","); got != "email,password" {
		t.Errorf("field violations = %q, want email,password", got)
	}

	admin, err := authc.Login(ctx, &flashsalev1.LoginRequest{Email: testAdminEmail, Password: testAdminPassword})
	if err != nil {
		t.Fatalf("admin login: %v", err)
	}
	if admin.GetUser().GetRole() != flashsalev1.Role_ROLE_ADMIN {
		t.Errorf("admin role = %v", admin.GetUser().GetRole())
	}
	_, errWrong := authc.Login(ctx, &flashsalev1.LoginRequest{Email: "alice@example.com", Password: "wrong-password"})
	_, errUnknown := authc.Login(ctx, &flashsalev1.LoginRequest{Email: "nobody@example.com", Password: "wrong-password"})
	stWrong := wantStatus(t, errWrong, codes.Unauthenticated, "")
	stUnknown := wantStatus(t, errUnknown, codes.Unauthenticated, "")
	if stWrong.Message() != stUnknown.Message() {
		t.Errorf("wrong password says %q but unknown email says %q; they must not differ", stWrong.Message(), stUnknown.Message())
	}

	adminCtx := bearer(ctx, admin.GetAccessToken())
	aliceCtx := bearer(ctx, alice.GetAccessToken())
	bobCtx := bearer(ctx, bob.GetAccessToken())

	// Only admins create products; bad tokens are refused.
	newProduct := &flashsalev1.CreateProductRequest{Name: "Sneakers", PriceMinor: 12900, Currency: "eur", Quantity: 2}
	_, err = products.CreateProduct(aliceCtx, newProduct)
	wantStatus(t, err, codes.PermissionDenied, "")
	_, err = products.CreateProduct(ctx, newProduct)
	wantStatus(t, err, codes.Unauthenticated, "")
	_, err = products.CreateProduct(bearer(ctx, tamper(admin.GetAccessToken())), newProduct)
	wantStatus(t, err, codes.Unauthenticated, "")
	_, err = products.CreateProduct(bearer(ctx, unsigned(admin.GetAccessToken())), newProduct)
	wantStatus(t, err, codes.Unauthenticated, "")
	_, err = products.CreateProduct(adminCtx, &flashsalev1.CreateProductRequest{Currency: "euro", Quantity: -1, PriceMinor: -5})
	st = wantStatus(t, err, codes.InvalidArgument, "")
	if got := strings.Join(fieldViolations(st), ","); got != "name,price_minor,currency,quantity" {
		t.Errorf("field violations = %q", got)
	}

	one, err := products.CreateProduct(adminCtx, newProduct)
	if err != nil {
		t.Fatalf("create product: %v", err)
	}
	if one.GetProduct().GetCurrency() != "EUR" || one.GetProduct().GetQuantity() != 2 {
		t.Errorf("product = %v", one.GetProduct())
	}
	later, err := products.CreateProduct(adminCtx, &flashsalev1.CreateProductRequest{Name: "Later", PriceMinor: 100, Currency: "EUR", Quantity: 5})
	if err != nil {
		t.Fatalf("create product: %v", err)
	}

	// Sales: one open now, one that opens tomorrow.
	now := time.Now()
	open, err := sales.CreateFlashSale(adminCtx, &flashsalev1.CreateFlashSaleRequest{
		ProductId: one.GetProduct().GetId(), StartsAt: timestamppb.New(now.Add(-time.Minute)), EndsAt: timestamppb.New(now.Add(time.Hour)),
	})
	if err != nil {
		t.Fatalf("create sale: %v", err)
	}
	if open.GetFlashSale().GetState() != flashsalev1.SaleState_SALE_STATE_ACTIVE {
		t.Errorf("new open sale state = %v", open.GetFlashSale().GetState())
	}
	upcoming, err := sales.CreateFlashSale(adminCtx, &flashsalev1.CreateFlashSaleRequest{
		ProductId: later.GetProduct().GetId(), StartsAt: timestamppb.New(now.Add(24 * time.Hour)), EndsAt: timestamppb.New(now.Add(25 * time.Hour)),
	})
	if err != nil {
		t.Fatalf("create sale: %v", err)
	}
	_, err = sales.CreateFlashSale(adminCtx, &flashsalev1.CreateFlashSaleRequest{
		ProductId: one.GetProduct().GetId(), StartsAt: timestamppb.New(now.Add(30 * time.Minute)), EndsAt: timestamppb.New(now.Add(2 * time.Hour)),
	})
	wantStatus(t, err, codes.FailedPrecondition, "SALE_OVERLAP")
	_, err = sales.CreateFlashSale(adminCtx, &flashsalev1.CreateFlashSaleRequest{
		ProductId: one.GetProduct().GetId(), StartsAt: timestamppb.New(now.Add(3 * time.Hour)), EndsAt: timestamppb.New(now.Add(3 * time.Hour)),
	})
	wantStatus(t, err, codes.InvalidArgument, "")
	_, err = sales.CreateFlashSale(adminCtx, &flashsalev1.CreateFlashSaleRequest{
		ProductId: one.GetProduct().GetId(), StartsAt: timestamppb.New(now.Add(-3 * time.Hour)), EndsAt: timestamppb.New(now.Add(-2 * time.Hour)),
	})
	wantStatus(t, err, codes.InvalidArgument, "")
	_, err = sales.CreateFlashSale(adminCtx, &flashsalev1.CreateFlashSaleRequest{
		ProductId: "0190a8e4-0000-7000-8000-000000000000", StartsAt: timestamppb.New(now), EndsAt: timestamppb.New(now.Add(time.Hour)),
	})
	wantStatus(t, err, codes.NotFound, "")
	_, err = sales.CreateFlashSale(bobCtx, &flashsalev1.CreateFlashSaleRequest{
		ProductId: later.GetProduct().GetId(), StartsAt: timestamppb.New(now), EndsAt: timestamppb.New(now.Add(time.Hour)),
	})
	wantStatus(t, err, codes.PermissionDenied, "")

	// Orders: Alice wins a unit, once; Carl takes the last; Bob finds it sold
	// out. (Once sold out, the fast modes answer SOLD_OUT from memory to
	// everyone, so the repeat comes before the sell-out.)
	oneID := one.GetProduct().GetId()
	placed, err := orders.PlaceOrder(aliceCtx, &flashsalev1.PlaceOrderRequest{ProductId: oneID})
	if err != nil {
		t.Fatalf("place order: %v", err)
	}
	o := placed.GetOrder()
	if o.GetStatus() != flashsalev1.OrderStatus_ORDER_STATUS_CONFIRMED || o.GetFlashSaleId() != open.GetFlashSale().GetId() ||
		o.GetUserId() != alice.GetUser().GetId() || o.GetProductId() != oneID {
		t.Errorf("order = %v", o)
	}
	_, err = orders.PlaceOrder(aliceCtx, &flashsalev1.PlaceOrderRequest{ProductId: oneID})
	wantStatus(t, err, codes.AlreadyExists, "ALREADY_ORDERED")
	carl, err := authc.Register(ctx, &flashsalev1.RegisterRequest{Email: "carl@example.com", Password: "carl-password"})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if _, err := orders.PlaceOrder(bearer(ctx, carl.GetAccessToken()), &flashsalev1.PlaceOrderRequest{ProductId: oneID}); err != nil {
		t.Fatalf("carl's order: %v", err)
	}
	_, err = orders.PlaceOrder(bobCtx, &flashsalev1.PlaceOrderRequest{ProductId: oneID})
	wantStatus(t, err, codes.FailedPrecondition, "SOLD_OUT")
	_, err = orders.PlaceOrder(bobCtx, &flashsalev1.PlaceOrderRequest{ProductId: later.GetProduct().GetId()})
	wantStatus(t, err, codes.FailedPrecondition, "SALE_NOT_ACTIVE")
	_, err = orders.PlaceOrder(bobCtx, &flashsalev1.PlaceOrderRequest{ProductId: "nope"})
	wantStatus(t, err, codes.InvalidArgument, "")
	_, err = orders.PlaceOrder(ctx, &flashsalev1.PlaceOrderRequest{ProductId: oneID})
	wantStatus(t, err, codes.Unauthenticated, "")

	// Status and checks.
	status1, err := sales.GetSaleStatus(ctx, &flashsalev1.GetSaleStatusRequest{ProductId: oneID})
	if err != nil {
		t.Fatalf("sale status: %v", err)
	}
	if status1.GetState() != flashsalev1.SaleState_SALE_STATE_SOLD_OUT || status1.GetRemaining() != 0 || status1.GetFlashSaleId() != open.GetFlashSale().GetId() {
		t.Errorf("status = %v, want SOLD_OUT with 0 left", status1)
	}
	status2, err := sales.GetSaleStatus(ctx, &flashsalev1.GetSaleStatusRequest{ProductId: later.GetProduct().GetId()})
	if err != nil {
		t.Fatalf("sale status: %v", err)
	}
	if status2.GetState() != flashsalev1.SaleState_SALE_STATE_UPCOMING || status2.GetRemaining() != 5 || status2.GetServerTime() == nil {
		t.Errorf("status = %v, want UPCOMING with 5 left", status2)
	}
	mine, err := orders.CheckOrder(aliceCtx, &flashsalev1.CheckOrderRequest{ProductId: oneID})
	if err != nil || !mine.GetSecured() || mine.GetOrder().GetId() != o.GetId() {
		t.Errorf("alice check = %v, %v; want secured with %s", mine, err, o.GetId())
	}
	notMine, err := orders.CheckOrder(bobCtx, &flashsalev1.CheckOrderRequest{ProductId: oneID})
	if err != nil || notMine.GetSecured() || notMine.GetOrder() != nil {
		t.Errorf("bob check = %v, %v; want not secured", notMine, err)
	}

	// A customer sees only their own orders; the admin sees everyone's.
	aliceList, err := orders.ListOrders(aliceCtx, &flashsalev1.ListOrdersRequest{})
	if err != nil || len(aliceList.GetOrders()) != 1 {
		t.Errorf("alice orders = %v, %v; want 1", aliceList, err)
	}
	bobList, err := orders.ListOrders(bobCtx, &flashsalev1.ListOrdersRequest{})
	if err != nil || len(bobList.GetOrders()) != 0 {
		t.Errorf("bob orders = %v, %v; want none", bobList, err)
	}
	adminList, err := orders.ListOrders(adminCtx, &flashsalev1.ListOrdersRequest{FlashSaleId: open.GetFlashSale().GetId()})
	if err != nil || len(adminList.GetOrders()) != 2 || adminList.GetOrders()[1].GetUserId() != alice.GetUser().GetId() {
		t.Errorf("admin orders = %v, %v; want carl's and alice's, newest first", adminList, err)
	}

	// Listing sales: default is active + upcoming, soonest first.
	list, err := sales.ListFlashSales(ctx, &flashsalev1.ListFlashSalesRequest{})
	if err != nil {
		t.Fatalf("list sales: %v", err)
	}
	if len(list.GetFlashSales()) != 2 || list.GetFlashSales()[0].GetId() != open.GetFlashSale().GetId() || list.GetFlashSales()[1].GetId() != upcoming.GetFlashSale().GetId() {
		t.Errorf("sales = %v, want the open one then the upcoming one", list.GetFlashSales())
	}
	ended, err := sales.ListFlashSales(ctx, &flashsalev1.ListFlashSalesRequest{States: []flashsalev1.SaleState{flashsalev1.SaleState_SALE_STATE_ENDED}})
	if err != nil || len(ended.GetFlashSales()) != 0 {
		t.Errorf("ended sales = %v, %v; want none", ended, err)
	}

	// Paging through products one at a time visits both.
	var seen []string
	token := ""
	for range 5 {
		page, err := products.ListProducts(ctx, &flashsalev1.ListProductsRequest{PageSize: 1, PageToken: token})
		if err != nil {
			t.Fatalf("list products: %v", err)
		}
		for _, p := range page.GetProducts() {
			seen = append(seen, p.GetId())
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(seen) != 2 || seen[0] != oneID || seen[1] != later.GetProduct().GetId() {
		t.Errorf("paged products = %v", seen)
	}
}

// tamper flips the role in a token's payload, keeping its signature.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = []byte(strings.Replace(string(payload), `"admin"`, `"customer"`, 1) + " ")
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

// unsigned re-heads a token with alg "none" and drops the signature.
func unsigned(token string) string {
	parts := strings.Split(token, ".")
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	return header + "." + parts[1] + "."
}

// TestReflectionAndHealth shows what grpcurl sees: the four services, health
// and reflection, without proto files.
func TestReflectionAndHealth(t *testing.T) {
	s := startServer(t)
	ctx := t.Context()
	stream, err := reflectionpb.NewServerReflectionClient(s.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, svc := range resp.GetListServicesResponse().GetService() {
		got[svc.GetName()] = true
	}
	for _, want := range []string{
		"flashsale.v1.AuthService", "flashsale.v1.ProductService", "flashsale.v1.FlashSaleService", "flashsale.v1.OrderService",
		"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
	} {
		if !got[want] {
			t.Errorf("reflection does not list %s (got %v)", want, got)
		}
	}
	h, err := healthpb.NewHealthClient(s.conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health = %v, %v; want SERVING", h, err)
	}
}
