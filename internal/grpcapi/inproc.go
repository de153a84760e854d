package grpcapi

import (
	"context"
	"net/http"

	"github.com/fullstorydev/grpchan"
	"github.com/fullstorydev/grpchan/inprocgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Channel is the way into the server from this process, for the REST
// gateway: a grpc.ClientConnInterface whose calls run the server's one
// interceptor chain (Server.Interceptors) and handlers, as calls from the
// network do, without encoding anything or crossing a connection.
//
//   - A unary call runs on the caller's goroutine (the HTTP request's):
//     the request message is copied into the handler's, the reply back,
//     and the headers the handler set (x-http-code) reach the gateway as
//     gRPC response headers would.
//   - A stream (WatchSaleStatus) goes through grpchan's inprocgrpc, which
//     runs the handler on a goroutine of its own, as a stream must, and
//     ends it with the call.
//
// The caller's outgoing metadata is the handler's incoming metadata. The
// HTTP request the call is made for travels in the context
// (WithHTTPRequest), where nothing from the network can put one: that is
// how the per-IP limits and the tracing know a REST call.
type Channel struct {
	methods map[string]unaryMethod // by full method name
	unary   grpc.UnaryServerInterceptor
	streams *inprocgrpc.Channel
}

type unaryMethod struct {
	handler grpc.MethodHandler
	srv     any
}

func newChannel(services grpchan.HandlerMap, unary []grpc.UnaryServerInterceptor, stream []grpc.StreamServerInterceptor) *Channel {
	c := &Channel{
		methods: map[string]unaryMethod{},
		unary:   chainUnary(unary),
		// Only streams go through inprocgrpc: Invoke runs unary calls.
		streams: new(inprocgrpc.Channel).WithServerStreamInterceptor(chainStream(stream)),
	}
	services.ForEach(func(desc *grpc.ServiceDesc, srv any) {
		for _, m := range desc.Methods {
			c.methods["/"+desc.ServiceName+"/"+m.MethodName] = unaryMethod{handler: m.Handler, srv: srv}
		}
		c.streams.RegisterService(desc, srv)
	})
	return c
}

// Invoke runs a unary call in process.
func (c *Channel) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	m, ok := c.methods[method]
	if !ok {
		return status.Errorf(codes.Unimplemented, "method %s not implemented", method)
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	ts := &unaryTransport{method: method}
	ctx = grpc.NewContextWithServerTransportStream(metadata.NewIncomingContext(ctx, md), ts)
	dec := func(in any) error {
		proto.Merge(in.(proto.Message), args.(proto.Message))
		return nil
	}
	resp, err := m.handler(m.srv, ctx, dec, c.unary)
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.HeaderCallOption:
			*o.HeaderAddr = ts.header
		case grpc.TrailerCallOption:
			*o.TrailerAddr = ts.trailer
		}
	}
	if err != nil {
		return err
	}
	if resp == nil {
		return status.Error(codes.Internal, "handler returned neither a response nor an error")
	}
	proto.Merge(reply.(proto.Message), resp.(proto.Message))
	return nil
}

// NewStream opens a streaming call in process.
func (c *Channel) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.streams.NewStream(ctx, desc, method, opts...)
}

// unaryTransport is the grpc.ServerTransportStream of an in-process unary
// call: grpc.Method reads its method, grpc.SetHeader and SetTrailer record
// what the handler sends back.
type unaryTransport struct {
	method          string
	header, trailer metadata.MD
}

func (t *unaryTransport) Method() string { return t.method }

func (t *unaryTransport) SetHeader(md metadata.MD) error {
	t.header = metadata.Join(t.header, md)
	return nil
}

func (t *unaryTransport) SendHeader(md metadata.MD) error { return t.SetHeader(md) }

func (t *unaryTransport) SetTrailer(md metadata.MD) error {
	t.trailer = metadata.Join(t.trailer, md)
	return nil
}

// chainUnary makes one interceptor of several, the first outermost, as
// grpc.ChainUnaryInterceptor does for the server.
func chainUnary(list []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return unaryFrom(list, 0, info, handler)(ctx, req)
	}
}

func unaryFrom(list []grpc.UnaryServerInterceptor, i int, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) grpc.UnaryHandler {
	if i == len(list) {
		return handler
	}
	return func(ctx context.Context, req any) (any, error) {
		return list[i](ctx, req, info, unaryFrom(list, i+1, info, handler))
	}
}

// chainStream is chainUnary for streams.
func chainStream(list []grpc.StreamServerInterceptor) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return streamFrom(list, 0, info, handler)(srv, ss)
	}
}

func streamFrom(list []grpc.StreamServerInterceptor, i int, info *grpc.StreamServerInfo, handler grpc.StreamHandler) grpc.StreamHandler {
	if i == len(list) {
		return handler
	}
	return func(srv any, ss grpc.ServerStream) error {
		return list[i](srv, ss, info, streamFrom(list, i+1, info, handler))
	}
}

type httpRequestKey struct{}

// WithHTTPRequest is ctx, for a call made through a Channel on behalf of
// the HTTP request r: the server then takes the client's address from r
// (ClientIP.FromHTTP), and knows the call for a REST one.
func WithHTTPRequest(ctx context.Context, r *http.Request) context.Context {
	return context.WithValue(ctx, httpRequestKey{}, r)
}

// httpRequestOf is the HTTP request of a call made through a Channel, nil
// for a call from the network. A stream's context holds no value of its
// caller's (inprocgrpc leaves them out), so its caller's is looked at too.
func httpRequestOf(ctx context.Context) *http.Request {
	if r, ok := ctx.Value(httpRequestKey{}).(*http.Request); ok {
		return r
	}
	if cc := inprocgrpc.ClientContext(ctx); cc != nil {
		r, _ := cc.Value(httpRequestKey{}).(*http.Request)
		return r
	}
	return nil
}
