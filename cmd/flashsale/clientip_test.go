package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
)

// getWith sends GET url with the given headers and returns the status.
func getWith(t *testing.T, url string, header http.Header) int {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func randomIP() string {
	return fmt.Sprintf("%d.%d.%d.%d", 1+rand.IntN(222), rand.IntN(256), rand.IntN(256), 1+rand.IntN(254))
}

// TestForwardedForNotTrusted: with no TRUSTED_PROXIES, a caller cannot
// escape its per-IP bucket by making up X-Forwarded-For (REST), the
// gateway's own metadata (REST, as Grpc-Metadata-*), or x-forwarded-for
// metadata (gRPC from loopback, where the gateway's calls come from).
func TestForwardedForNotTrusted(t *testing.T) {
	const capacity, calls = 100, 1500
	s := startServer(t, "RL_DISABLED=false", fmt.Sprint("RL_IP_CAPACITY=", capacity), "RL_IP_REFILL=1",
		"RL_GLOBAL_CAPACITY=100000", "RL_GLOBAL_REFILL=100000")
	start := time.Now()
	var ok, limited, other atomic.Int64
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range 10 {
		wg.Go(func() {
			for next.Add(1) <= calls {
				h := http.Header{}
				h.Set("X-Forwarded-For", randomIP()+", "+randomIP())
				h.Set("X-Real-Ip", randomIP())
				h.Set("Grpc-Metadata-X-Flashsale-Client-Ip", randomIP())
				h.Set("Grpc-Metadata-X-Forwarded-For", randomIP())
				switch code := getWith(t, s.baseURL+"/v1/flash-sales", h); code {
				case 200:
					ok.Add(1)
				case 429:
					limited.Add(1)
				default:
					other.Add(1)
				}
			}
		})
	}
	wg.Wait()
	// The bucket allows its capacity plus one a second; leave room for a
	// slow run.
	allowed := int64(capacity + time.Since(start).Seconds() + 5)
	if ok.Load() > allowed || other.Load() > 0 {
		t.Errorf("REST, %d calls each with a made-up X-Forwarded-For: %d answered 200, %d 429, %d other; want at most %d 200s and the rest 429",
			calls, ok.Load(), limited.Load(), other.Load(), allowed)
	}

	// The same over gRPC: the bucket is drained, and spoofed metadata does
	// not open another.
	client := flashsalev1.NewFlashSaleServiceClient(s.conn)
	for i := range 20 {
		ctx := metadata.AppendToOutgoingContext(t.Context(),
			"x-forwarded-for", randomIP(), "x-real-ip", randomIP(),
			"x-flashsale-client-ip", randomIP(), "x-flashsale-gateway-key", "guess")
		_, err := client.ListFlashSales(ctx, &flashsalev1.ListFlashSalesRequest{})
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("gRPC call %d with spoofed forwarding metadata = %v, want ResourceExhausted", i, err)
		}
	}
}

// TestForwardedForTrustedProxies: behind trusted proxies the client is the
// right-most X-Forwarded-For address that is not a trusted proxy; what a
// client writes to the left of it changes nothing.
func TestForwardedForTrustedProxies(t *testing.T) {
	s := startServer(t, "RL_DISABLED=false", "RL_IP_CAPACITY=3", "RL_IP_REFILL=0.01",
		"TRUSTED_PROXIES=127.0.0.0/8, 10.0.0.0/8")
	u := s.baseURL + "/v1/flash-sales"
	via := func(xff ...string) http.Header {
		h := http.Header{}
		for _, v := range xff {
			h.Add("X-Forwarded-For", v)
		}
		return h
	}
	// 203.0.113.5 behind two trusted hops (10.1.2.3, then the TCP peer
	// 127.0.0.1), with a different made-up address in front each time.
	for i := range 3 {
		if code := getWith(t, u, via(randomIP()+", 203.0.113.5", "10.1.2.3")); code != 200 {
			t.Fatalf("call %d from 203.0.113.5 = %d, want 200", i+1, code)
		}
	}
	if code := getWith(t, u, via(randomIP()+", 203.0.113.5, 10.1.2.3")); code != 429 {
		t.Errorf("4th call from 203.0.113.5 (bucket of 3) = %d, want 429", code)
	}
	// Another client behind the same proxies has a bucket of its own.
	if code := getWith(t, u, via("203.0.113.5, 203.0.113.6, 10.9.9.9")); code != 200 {
		t.Errorf("first call from 203.0.113.6 = %d, want 200", code)
	}
	// With no header, the trusted peer itself is the client.
	for range 3 {
		getWith(t, u, nil)
	}
	if code := getWith(t, u, nil); code != 429 {
		t.Errorf("4th call from the proxy itself = %d, want 429", code)
	}
	// gRPC behind a trusted proxy: x-forwarded-for names the client.
	client := flashsalev1.NewFlashSaleServiceClient(s.conn)
	for i := range 4 {
		ctx := metadata.AppendToOutgoingContext(t.Context(), "x-forwarded-for", randomIP()+", 198.51.100.9")
		_, err := client.ListFlashSales(ctx, &flashsalev1.ListFlashSalesRequest{})
		if want := i < 3; (err == nil) != want {
			t.Errorf("gRPC call %d from 198.51.100.9 = %v, want allowed %v", i+1, err, want)
		}
	}
}
