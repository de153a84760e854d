package grpcapi

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// ClientIP says who is calling: the address that per-IP rate limits and
// stream caps count against. The client is the TCP peer, unless the peer is
// a trusted proxy (TRUSTED_PROXIES); then it is the right-most
// X-Forwarded-For address that is not a trusted proxy, since each trusted
// proxy appends the address of whoever connected to it and everything to
// the left of that was written by the client. A header from an untrusted
// peer is ignored.
//
// A REST call reaches the server through the in-process Channel with its
// HTTP request in the context (WithHTTPRequest), and the rule is applied to
// that request: a gRPC caller has no way to pose as the gateway.
//
// A nil *ClientIP trusts no proxy.
type ClientIP struct {
	trusted []netip.Prefix
}

// NewClientIP returns a ClientIP trusting the proxies in trusted.
func NewClientIP(trusted []netip.Prefix) *ClientIP {
	return &ClientIP{trusted: trusted}
}

// FromHTTP is the client of an HTTP request, from its peer (RemoteAddr) and
// X-Forwarded-For headers.
func (c *ClientIP) FromHTTP(r *http.Request) netip.Addr {
	return c.resolve(parseAddr(r.RemoteAddr), r.Header.Values("X-Forwarded-For"))
}

// fromContext is the client of a call: by FromHTTP for a REST call (its
// HTTP request is in the context), else from the gRPC peer and its
// x-forwarded-for metadata by the same rule.
func (c *ClientIP) fromContext(ctx context.Context) netip.Addr {
	if r := httpRequestOf(ctx); r != nil {
		return c.FromHTTP(r)
	}
	var from netip.Addr
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		from = parseAddr(p.Addr.String())
	}
	return c.resolve(from, metadata.ValueFromIncomingContext(ctx, "x-forwarded-for"))
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
