package app_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/tlstest"
)

// serverEnv is TLS_CERT_FILE and TLS_KEY_FILE of a server certificate ca
// signs with usages, and ORDER_MODE=direct.
func serverEnv(t *testing.T, ca *tlstest.CA, usages ...x509.ExtKeyUsage) map[string]string {
	t.Helper()
	c := ca.Issue(t, "server", usages...)
	return map[string]string{"TLS_CERT_FILE": c.CertFile, "TLS_KEY_FILE": c.KeyFile, "ORDER_MODE": "direct"}
}

// startTLS is start for an App serving TLS: it waits for /readyz over
// HTTPS, trusting ca, and its baseURL is https://.
func startTLS(t *testing.T, cfg config.Config, ca *x509.CertPool) *running {
	t.Helper()
	return serve(t, cfg, "https", httpsClient(ca))
}

func httpsClient(ca *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: ca},
		ForceAttemptHTTP2: true,
	}}
}

// dialTLS is a gRPC connection to addr over TLS trusting ca, presenting
// the client certificates given.
func dialTLS(t *testing.T, addr string, ca *x509.CertPool, clientCerts ...tls.Certificate) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ca, Certificates: clientCerts})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func healthCheck(conn *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err == nil && h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return status.Errorf(codes.Unknown, "health %v", h.GetStatus())
	}
	return err
}

// restGet GETs url with client and returns its status and body.
func restGet(t *testing.T, client *http.Client, url string) (int, string, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, resp.Proto, string(b)
}

// TestTLS: with TLS_CERT_FILE and TLS_KEY_FILE, REST is served over HTTPS
// (HTTP/2 too), the /v1 calls still reaching the gRPC server through the
// gateway's hop, gRPC over TLS serves health and the flashsale services,
// and clients speaking plain text are refused on both listeners.
func TestTLS(t *testing.T) {
	ca := tlstest.NewCA(t)
	cfg := testConfig(t, serverEnv(t, ca, x509.ExtKeyUsageServerAuth))
	r := startTLS(t, cfg, ca.Pool)

	conn := dialTLS(t, r.grpcAddr, ca.Pool)
	if err := healthCheck(conn); err != nil {
		t.Fatalf("gRPC health over TLS: %v", err)
	}
	productID := saleOpenNow(t, conn, cfg.AdminEmail, cfg.AdminPassword) // Login, CreateProduct, CreateFlashSale

	client := httpsClient(ca.Pool)
	if code, proto, body := restGet(t, client, r.baseURL+"/healthz"); code != http.StatusOK || proto != "HTTP/2.0" {
		t.Errorf("GET /healthz over HTTPS = %d %s %s, want 200 over HTTP/2.0", code, proto, body)
	}
	code, _, body := restGet(t, client, r.baseURL+"/v1/products/"+productID+"/sale-status")
	var st struct{ State string }
	if code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil || st.State != "SALE_STATE_ACTIVE" {
		t.Errorf("GET sale-status over HTTPS = %d %s, want 200 with the sale active", code, body)
	}
	code, _, body = restGet(t, client, r.baseURL+"/v1/products")
	if code != http.StatusOK || !strings.Contains(body, productID) {
		t.Errorf("GET /v1/products over HTTPS = %d %s, want 200 listing %s", code, body, productID)
	}

	// Plain text: HTTP gets Go's 400 "Client sent an HTTP request to an
	// HTTPS server", gRPC never gets through.
	if code := getCode("http://" + strings.TrimPrefix(r.baseURL, "https://") + "/healthz"); code != http.StatusBadRequest {
		t.Errorf("plain HTTP GET /healthz = %d, want 400", code)
	}
	plain, err := grpc.NewClient(r.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := healthCheck(plain); status.Code(err) != codes.Unavailable {
		t.Errorf("plain-text gRPC health = %v, want Unavailable", err)
	}
	// A client that trusts another CA refuses the server.
	if err := healthCheck(dialTLS(t, r.grpcAddr, tlstest.NewCA(t).Pool)); status.Code(err) != codes.Unavailable {
		t.Errorf("gRPC health trusting another CA = %v, want Unavailable", err)
	}
}

// TestTLSClientCertificates: with TLS_CLIENT_CA_FILE, the gRPC listener
// refuses a client without a certificate, or with one another CA signed,
// and serves one with a certificate the CA signed; REST still needs none:
// its gateway calls the services in process.
func TestTLSClientCertificates(t *testing.T) {
	ca := tlstest.NewCA(t)
	// A server certificate only: the REST gateway calls the services in
	// process, and needs no client certificate of its own.
	env := serverEnv(t, ca, x509.ExtKeyUsageServerAuth)
	env["TLS_CLIENT_CA_FILE"] = ca.CertFile
	cfg := testConfig(t, env)
	r := startTLS(t, cfg, ca.Pool)

	if err := healthCheck(dialTLS(t, r.grpcAddr, ca.Pool)); status.Code(err) != codes.Unavailable {
		t.Errorf("gRPC health without a client certificate = %v, want Unavailable", err)
	}
	stranger := tlstest.NewCA(t).Issue(t, "stranger", x509.ExtKeyUsageClientAuth)
	if err := healthCheck(dialTLS(t, r.grpcAddr, ca.Pool, stranger.TLS)); status.Code(err) != codes.Unavailable {
		t.Errorf("gRPC health with a certificate another CA signed = %v, want Unavailable", err)
	}
	conn := dialTLS(t, r.grpcAddr, ca.Pool, ca.Issue(t, "internal-caller", x509.ExtKeyUsageClientAuth).TLS)
	if err := healthCheck(conn); err != nil {
		t.Fatalf("gRPC health with a client certificate: %v", err)
	}
	productID := saleOpenNow(t, conn, cfg.AdminEmail, cfg.AdminPassword)
	if _, err := flashsalev1.NewFlashSaleServiceClient(conn).GetSaleStatus(t.Context(), &flashsalev1.GetSaleStatusRequest{ProductId: productID}); err != nil {
		t.Errorf("GetSaleStatus with a client certificate: %v", err)
	}

	client := httpsClient(ca.Pool) // no client certificate
	if code, _, body := restGet(t, client, r.baseURL+"/v1/products/"+productID+"/sale-status"); code != http.StatusOK {
		t.Errorf("REST sale-status with client certificates on gRPC = %d %s, want 200", code, body)
	}
	if code, _, body := restGet(t, client, r.baseURL+"/healthz"); code != http.StatusOK {
		t.Errorf("REST /healthz = %d %s, want 200", code, body)
	}
}
