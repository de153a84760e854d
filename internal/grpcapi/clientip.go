package grpcapi

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// Metadata the REST gateway adds to every call it makes for an HTTP client:
// the client's address, and the key that proves the call is the gateway's.
// grpc-gateway lets the values of a metadata annotator replace whatever a
// client sent under the same names (Grpc-Metadata-X-Flashsale-...).
const (
	mdClientIP   = "x-flashsale-client-ip"
	mdGatewayKey = "x-flashsale-gateway-key"
)

// ClientIP says who is calling: the address that per-IP rate limits and
// stream caps count against. The client is the TCP peer, unless the peer is
// a trusted proxy (TRUSTED_PROXIES); then it is the right-most
// X-Forwarded-For address that is not a trusted proxy, since each trusted
// proxy appends the address of whoever connected to it and everything to
// the left of that was written by the client. A header from an untrusted
// peer is ignored.
//
// The REST gateway applies this rule to the HTTP request and passes the
// result to the gRPC server with a random key made at start, which only
// this process knows: a gRPC caller cannot pose as the gateway, even from
// loopback or through a trusted proxy.
//
// A nil *ClientIP trusts no proxy and knows no gateway.
type ClientIP struct {
	trusted []netip.Prefix
	key     string
}

// NewClientIP returns a ClientIP trusting the proxies in trusted.
func NewClientIP(trusted []netip.Prefix) *ClientIP {
	return &ClientIP{trusted: trusted, key: rand.Text()}
}

// FromHTTP is the client of an HTTP request, from its peer (RemoteAddr) and
// X-Forwarded-For headers.
func (c *ClientIP) FromHTTP(r *http.Request) netip.Addr {
	return c.resolve(parseAddr(r.RemoteAddr), r.Header.Values("X-Forwarded-For"))
}

// GatewayMetadata is the metadata the REST gateway adds to each call, for
// runtime.WithMetadata: the HTTP client's address and the gateway's key.
func (c *ClientIP) GatewayMetadata(_ context.Context, r *http.Request) metadata.MD {
	if c == nil {
		return nil
	}
	return metadata.Pairs(mdClientIP, c.FromHTTP(r).String(), mdGatewayKey, c.key)
}

// fromGateway reports whether a gRPC call came through this process's
// REST gateway (it carries the gateway's key).
func (c *ClientIP) fromGateway(ctx context.Context) bool {
	if c == nil {
		return false
	}
	k := metadata.ValueFromIncomingContext(ctx, mdGatewayKey)
	return len(k) == 1 && subtle.ConstantTimeCompare([]byte(k[0]), []byte(c.key)) == 1
}

// fromContext is the client of a gRPC call: the address the gateway
// forwarded when the call carries the gateway's key, else the peer and its
// x-forwarded-for metadata by the same rule as FromHTTP.
func (c *ClientIP) fromContext(ctx context.Context) netip.Addr {
	md, _ := metadata.FromIncomingContext(ctx)
	if c != nil {
		if k := md.Get(mdGatewayKey); len(k) == 1 && subtle.ConstantTimeCompare([]byte(k[0]), []byte(c.key)) == 1 {
			if ip := md.Get(mdClientIP); len(ip) == 1 {
				if a, err := netip.ParseAddr(ip[0]); err == nil {
					return a
				}
			}
		}
	}
	var from netip.Addr
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		from = parseAddr(p.Addr.String())
	}
	return c.resolve(from, md.Get("x-forwarded-for"))
}

// resolve applies the rule: starting from the peer, step left through the
// X-Forwarded-For addresses (several headers read as one list) while the
// current hop is a trusted proxy. An address that does not parse ends the
// walk at the trusted hop that passed it on.
func (c *ClientIP) resolve(from netip.Addr, xff []string) netip.Addr {
	client := from
	for i := len(xff) - 1; i >= 0 && c.trusts(client); i-- {
		entries := strings.Split(xff[i], ",")
		for j := len(entries) - 1; j >= 0 && c.trusts(client); j-- {
			a := parseAddr(strings.TrimSpace(entries[j]))
			if !a.IsValid() {
				return client
			}
			client = a
		}
	}
	return client
}

func (c *ClientIP) trusts(a netip.Addr) bool {
	if c == nil || !a.IsValid() {
		return false
	}
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseAddr reads an address with or without a port ("192.0.2.1",
// "[2001:db8::1]:443"); IPv4-mapped IPv6 becomes IPv4. The zero Addr when
// s is neither.
func parseAddr(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		host, _, err := net.SplitHostPort(s)
		if err != nil {
			return netip.Addr{}
		}
		if a, err = netip.ParseAddr(host); err != nil {
			return netip.Addr{}
		}
	}
	return a.Unmap().WithZone("")
}

// limitKey is the bucket a client address counts against: the address for
// IPv4, its /64 for IPv6, since one subscriber usually holds a whole /64
// and could otherwise take a fresh bucket for every call.
func limitKey(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "unknown"
	case a.Is4():
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}
