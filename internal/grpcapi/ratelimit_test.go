package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
)

// TestBucketsBounded: however many addresses call, the table holds at most
// its size; the least recently used address is the one forgotten, and an
// address in use keeps its (drained) bucket.
func TestBucketsBounded(t *testing.T) {
	const size = 1000
	b := newBuckets(size, 5, 1)
	hot := b.get("192.0.2.1")
	for range 5 {
		if !hot.Allow() {
			t.Fatal("a fresh bucket of 5 refused one of its first 5 calls")
		}
	}
	for i := range 3 * size {
		b.get(fmt.Sprintf("10.0.%d.%d", i>>8&255, i&255))
		if i%100 == 0 {
			b.get("192.0.2.1") // keeps calling
		}
	}
	if n := b.len(); n > size {
		t.Errorf("table holds %d buckets after %d addresses, want at most %d", n, 3*size+1, size)
	}
	if b.get("192.0.2.1") != hot {
		t.Error("an address calling all along lost its bucket, so it got a full one back")
	}
	if hot.Allow() {
		t.Error("the drained bucket of an address in use allowed a call")
	}
}

// BenchmarkBucketsNewAddress: a lookup with a full table costs the same as
// with an empty one (the old table scanned every entry when full).
func BenchmarkBucketsNewAddress(b *testing.B) {
	t := newBuckets(ipTableSize, 200, 50)
	for i := 0; b.Loop(); i++ {
		t.get(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
	}
}

type failingLimiter struct{}

func (failingLimiter) Allow(context.Context, string) (bool, time.Duration, error) {
	return false, 0, errors.New("redis down")
}

// TestSignInLimitWithoutRedis: when the shared sign-in buckets fail, this
// process's take over instead of the limit lifting; other methods are not
// counted against them.
func TestSignInLimitWithoutRedis(t *testing.T) {
	refused := newRefusals()
	l := newLimiter(Limits{
		GlobalCapacity: 1000, GlobalRefill: 1000, IPCapacity: 1000, IPRefill: 1000,
		AuthIPCapacity: 3, AuthIPRefill: 0.001, AuthIP: failingLimiter{},
	}, nil, slog.New(slog.DiscardHandler), refused)
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1}})
	ok := func(context.Context, any) (any, error) { return "ok", nil }
	call := func(method string) codes.Code {
		_, err := l.unary(ctx, &flashsalev1.LoginRequest{}, &grpc.UnaryServerInfo{FullMethod: method}, ok)
		return status.Code(err)
	}
	for i := range 3 {
		if c := call(flashsalev1.AuthService_Login_FullMethodName); c != codes.OK {
			t.Fatalf("sign-in %d = %v, want OK", i+1, c)
		}
	}
	if c := call(flashsalev1.AuthService_Register_FullMethodName); c != codes.ResourceExhausted {
		t.Errorf("4th sign-in (a register) = %v, want ResourceExhausted", c)
	}
	if n := testutil.ToFloat64(refused.vec.WithLabelValues("signin_ip")); n != 1 {
		t.Errorf(`flashsale_rate_limited_total{limiter="signin_ip"} = %v, want 1`, n)
	}
	if c := call(flashsalev1.FlashSaleService_ListFlashSales_FullMethodName); c != codes.OK {
		t.Errorf("another method = %v, want OK", c)
	}
}
