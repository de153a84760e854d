package app_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
)

// TestShutdownDrains: when Run's context ends, /readyz and gRPC health
// fail at once while the server goes on answering calls, REST and gRPC, for
// SHUTDOWN_DRAIN_SECONDS; then a watcher's stream ends with Unavailable
// (rather than holding the stop until SHUTDOWN_TIMEOUT_SECONDS), Run
// returns, and nothing listens any more.
func TestShutdownDrains(t *testing.T) {
	const drain = 2 * time.Second
	cfg := testConfig(t, map[string]string{"ORDER_MODE": "direct", "SHUTDOWN_DRAIN_SECONDS": "2", "SHUTDOWN_TIMEOUT_SECONDS": "20"})
	r := start(t, cfg)
	conn, err := grpc.NewClient(r.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := t.Context()
	productID := saleOpenNow(t, conn, cfg.AdminEmail, cfg.AdminPassword)
	sales := flashsalev1.NewFlashSaleServiceClient(conn)
	health := healthpb.NewHealthClient(conn)

	watch, err := sales.WatchSaleStatus(ctx, &flashsalev1.WatchSaleStatusRequest{ProductId: productID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatalf("first watch message: %v", err)
	}
	watchEnded := make(chan error, 1)
	go func() {
		for {
			if _, err := watch.Recv(); err != nil {
				watchEnded <- err
				return
			}
		}
	}()

	r.stop()
	stopped := time.Now()
	waitFor(t, time.Second, "/readyz to fail", func() bool { return getCode(r.baseURL+"/readyz") == http.StatusServiceUnavailable })
	body := getBody(t, r.baseURL+"/readyz")
	if !strings.Contains(body, "draining") {
		t.Errorf("/readyz while draining = %q, want it to say draining", body)
	}
	if h, err := health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || h.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health while draining = %v, %v; want NOT_SERVING", h.GetStatus(), err)
	}

	// Still serving, over both transports, until the drain is over.
	for time.Since(stopped) < drain-500*time.Millisecond {
		if _, err := sales.GetSaleStatus(ctx, &flashsalev1.GetSaleStatusRequest{ProductId: productID}); err != nil {
			t.Fatalf("gRPC GetSaleStatus %v into the drain: %v", time.Since(stopped), err)
		}
		if code := getCode(r.baseURL + "/v1/products/" + productID + "/sale-status"); code != http.StatusOK {
			t.Fatalf("REST GetSaleStatus %v into the drain = %d, want 200", time.Since(stopped), code)
		}
		select {
		case err := <-watchEnded:
			t.Fatalf("watch ended %v into the drain: %v", time.Since(stopped), err)
		default:
		}
		time.Sleep(100 * time.Millisecond)
	}

	select {
	case err := <-watchEnded:
		if status.Code(err) != codes.Unavailable {
			t.Errorf("watch ended with %v, want Unavailable (reconnect elsewhere)", err)
		}
	case <-time.After(drain + 5*time.Second):
		t.Fatal("watch still open well after the drain")
	}
	if err := r.wait(t, 10*time.Second); err != nil {
		t.Errorf("Run: %v", err)
	}
	if took := time.Since(stopped); took < drain || took > drain+5*time.Second {
		t.Errorf("shutdown took %v, want the drain (%v) and little more", took, drain)
	}
	if code := getCode(r.baseURL + "/healthz"); code != 0 {
		t.Errorf("GET /healthz after Run returned = %d, want no answer", code)
	}
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	_, _, body := restGet(t, http.DefaultClient, url)
	return body
}

// saleOpenNow creates, as the admin, a product and a sale of it open now,
// and returns the product's id.
func saleOpenNow(t *testing.T, conn *grpc.ClientConn, email, password string) string {
	t.Helper()
	ctx := t.Context()
	login, err := flashsalev1.NewAuthServiceClient(conn).Login(ctx, &flashsalev1.LoginRequest{Email: email, Password: password})
	if err != nil {
		t.Fatalf("admin login: %v", err)
	}
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+login.GetAccessToken())
	p, err := flashsalev1.NewProductServiceClient(conn).CreateProduct(actx, &flashsalev1.CreateProductRequest{Name: "Drop", PriceMinor: 100, Currency: "EUR", Quantity: 10})
	if err != nil {
		t.Fatalf("create product: %v", err)
	}
	now := time.Now()
	_, err = flashsalev1.NewFlashSaleServiceClient(conn).CreateFlashSale(actx, &flashsalev1.CreateFlashSaleRequest{
		ProductId: p.GetProduct().GetId(), StartsAt: timestamppb.New(now.Add(-time.Second)), EndsAt: timestamppb.New(now.Add(time.Hour)),
	})
	if err != nil {
		t.Fatalf("create sale: %v", err)
	}
	return p.GetProduct().GetId()
}
