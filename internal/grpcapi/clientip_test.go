package grpcapi

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"testing"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

func TestClientIPResolve(t *testing.T) {
	c := NewClientIP([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")})
	tests := []struct {
		name string
		peer string
		xff  []string
		want string
	}{
		{"untrusted peer, no header", "203.0.113.1:5000", nil, "203.0.113.1"},
		{"untrusted peer's header ignored", "203.0.113.1:5000", []string{"198.51.100.1"}, "203.0.113.1"},
		{"trusted peer, no header: the proxy itself", "10.0.0.1:5000", nil, "10.0.0.1"},
		{"one trusted hop", "10.0.0.1:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"client's own entries left of it ignored", "10.0.0.1:5000", []string{"1.1.1.1, 2.2.2.2, 198.51.100.1"}, "198.51.100.1"},
		{"two trusted hops", "10.0.0.1:5000", []string{"1.1.1.1, 198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"several headers read as one list", "10.0.0.1:5000", []string{"1.1.1.1, 198.51.100.1", "10.9.9.9"}, "198.51.100.1"},
		{"all trusted: the left-most", "10.0.0.1:5000", []string{"10.2.2.2, 10.3.3.3"}, "10.2.2.2"},
		{"garbage stops at the hop that passed it", "10.0.0.1:5000", []string{"1.1.1.1, not-an-ip, 10.3.3.3"}, "10.3.3.3"},
		{"empty entry stops too", "10.0.0.1:5000", []string{"1.1.1.1,, 10.3.3.3"}, "10.3.3.3"},
		{"entry with a port", "10.0.0.1:5000", []string{"198.51.100.1:4711"}, "198.51.100.1"},
		{"IPv6 entry with a port", "10.0.0.1:5000", []string{"[2001:db8::7]:443"}, "2001:db8::7"},
		{"IPv4-mapped IPv6 peer", "[::ffff:10.0.0.1]:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"trusted IPv6 proxy", "[2001:db8:ffff::1]:5000", []string{"2001:db8:1::5"}, "2001:db8:1::5"},
		{"loopback is not trusted unless listed", "127.0.0.1:5000", []string{"198.51.100.1"}, "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tt.peer, Header: http.Header{}}
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := c.FromHTTP(r).String(); got != tt.want {
				t.Errorf("FromHTTP = %s, want %s", got, tt.want)
			}
			// The gRPC side applies the same rule to a call's metadata.
			ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: tcpAddr(t, tt.peer)})
			ctx = metadata.NewIncomingContext(ctx, metadata.MD{"x-forwarded-for": tt.xff})
			if got := c.fromContext(ctx).String(); got != tt.want {
				t.Errorf("fromContext = %s, want %s", got, tt.want)
			}
		})
	}
	var none *ClientIP
	if got := none.FromHTTP(&http.Request{RemoteAddr: "10.0.0.1:1", Header: http.Header{"X-Forwarded-For": {"1.1.1.1"}}}); got.String() != "10.0.0.1" {
		t.Errorf("nil ClientIP FromHTTP = %s, want the peer", got)
	}
}

// TestClientIPInProcess: a REST call's client is its HTTP request's, which
// only this process can put in a call's context; metadata a gRPC caller
// sends, whatever it names, does not change who it is.
func TestClientIPInProcess(t *testing.T) {
	c := NewClientIP(nil)
	r := &http.Request{RemoteAddr: "198.51.100.1:5000", Header: http.Header{"X-Forwarded-For": {"1.1.1.1"}}}
	loopback := peer.NewContext(context.Background(), &peer.Peer{Addr: tcpAddr(t, "127.0.0.1:4000")})
	if got := c.fromContext(WithHTTPRequest(loopback, r)).String(); got != "198.51.100.1" {
		t.Errorf("REST call = %s, want the HTTP peer 198.51.100.1", got)
	}
	forged := metadata.MD{"x-flashsale-client-ip": {"192.0.2.9"}, "x-forwarded-for": {"192.0.2.9"}, "x-real-ip": {"192.0.2.9"}}
	if got := c.fromContext(metadata.NewIncomingContext(loopback, forged)).String(); got != "127.0.0.1" {
		t.Errorf("gRPC call with forged metadata = %s, want the peer 127.0.0.1", got)
	}
}

func TestLimitKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":             "192.0.2.1",
		"2001:db8:1:2:3:4:5:6":  "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::99": "2001:db8:1:2::/64",
	} {
		if got := limitKey(netip.MustParseAddr(in)); got != want {
			t.Errorf("limitKey(%s) = %s, want %s", in, got, want)
		}
	}
	if got := limitKey(netip.Addr{}); got != "unknown" {
		t.Errorf("limitKey(zero) = %s, want unknown", got)
	}
}

func tcpAddr(t *testing.T, s string) net.Addr {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
