package grpcapi

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
	"github.com/flashsale/flashsale/internal/auth"
)

// tokenAuth knows two tokens, "admin" and "customer"; the rest is refused.
type tokenAuth struct{}

func (tokenAuth) Register(context.Context, string, string) (auth.User, string, time.Time, error) {
	return auth.User{}, "", time.Time{}, errors.New("not in this test")
}

func (tokenAuth) Login(context.Context, string, string) (auth.User, string, time.Time, error) {
	return auth.User{}, "", time.Time{}, errors.New("not in this test")
}

func (tokenAuth) Authenticate(_ context.Context, token string) (auth.Caller, error) {
	switch token {
	case "admin":
		return auth.Caller{UserID: uuid.New(), Role: auth.RoleAdmin}, nil
	case "customer":
		return auth.Caller{UserID: uuid.New(), Role: auth.RoleCustomer}, nil
	}
	return auth.Caller{}, auth.ErrUnauthenticated
}

func newTestServer() *Server {
	return NewServer(Deps{
		Auth:    tokenAuth{},
		Log:     slog.New(slog.DiscardHandler),
		Metrics: prometheus.NewRegistry(),
		Now:     time.Now,
	})
}

// serve runs s on a loopback listener and returns a client connection to it.
func serve(t *testing.T, s *Server) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func withToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// TestEveryMethodHasARule: every method the real server registers (the four
// flashsale services, health, reflection v1 and v1alpha) has an access rule,
// and every rule names a registered method, so a misspelt rule cannot leave
// the method it meant refused or, worse, hide behind a default.
func TestEveryMethodHasARule(t *testing.T) {
	registered := map[string]bool{}
	for svc, info := range newTestServer().GetServiceInfo() {
		for _, m := range info.Methods {
			name := "/" + svc + "/" + m.Name
			registered[name] = true
			if accessOf(name) == noRule {
				t.Errorf("%s has no access rule; add it to methodAccess as public, customer or admin", name)
			}
		}
	}
	for _, want := range []string{
		flashsalev1.FlashSaleService_ReconcileSale_FullMethodName,
		"/grpc.health.v1.Health/Check",
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
	} {
		if !registered[want] {
			t.Errorf("%s is not registered; the enumeration misses services", want)
		}
	}
	for name := range methodAccess {
		if !registered[name] {
			t.Errorf("methodAccess has a rule for %s, which the server does not register", name)
		}
	}
	if got := accessOf(flashsalev1.FlashSaleService_ReconcileSale_FullMethodName); got != admin {
		t.Errorf("ReconcileSale access = %d, want admin (%d)", got, admin)
	}
}

// unruledService is a service registered next to the real ones with no
// access rule; called records whether any of its handlers ran.
func unruledService(called *atomic.Bool) *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: "flashsale.v1.Unruled",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Do",
			Handler: func(srv any, ctx context.Context, dec func(any) error, intercept grpc.UnaryServerInterceptor) (any, error) {
				in := new(emptypb.Empty)
				if err := dec(in); err != nil {
					return nil, err
				}
				handler := func(context.Context, any) (any, error) {
					called.Store(true)
					return &emptypb.Empty{}, nil
				}
				return intercept(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/flashsale.v1.Unruled/Do"}, handler)
			},
		}},
		Streams: []grpc.StreamDesc{{
			StreamName:    "Watch",
			ServerStreams: true,
			Handler: func(any, grpc.ServerStream) error {
				called.Store(true)
				return nil
			},
		}},
	}
}

// TestMethodWithoutRuleIsRefused: a registered method missing from
// methodAccess is refused with PermissionDenied, unary or streaming, with or
// without a token, even an admin's, and its handler never runs.
func TestMethodWithoutRuleIsRefused(t *testing.T) {
	for _, m := range []string{"/flashsale.v1.Unruled/Do", "/grpc.health.v2.Health/Check", "/other.Service/Method", ""} {
		if got := accessOf(m); got != noRule {
			t.Errorf("accessOf(%q) = %d, want noRule", m, got)
		}
	}

	s := newTestServer()
	var called atomic.Bool
	s.RegisterService(unruledService(&called), struct{}{})
	conn := serve(t, s)
	for _, token := range []string{"", "customer", "admin"} {
		t.Run("token="+token, func(t *testing.T) {
			ctx := t.Context()
			if token != "" {
				ctx = withToken(ctx, token)
			}
			err := conn.Invoke(ctx, "/flashsale.v1.Unruled/Do", &emptypb.Empty{}, &emptypb.Empty{})
			if status.Code(err) != codes.PermissionDenied {
				t.Errorf("unary call = %v, want PermissionDenied", err)
			}

			stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/flashsale.v1.Unruled/Watch")
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.SendMsg(&emptypb.Empty{}); err != nil {
				t.Fatal(err)
			}
			if err := stream.CloseSend(); err != nil {
				t.Fatal(err)
			}
			if err := stream.RecvMsg(&emptypb.Empty{}); status.Code(err) != codes.PermissionDenied {
				t.Errorf("streaming call = %v, want PermissionDenied", err)
			}
		})
	}
	if called.Load() {
		t.Error("a handler of a method without an access rule ran")
	}
}

// TestReconcileSaleIsAdminOnly: a customer is refused before the handler; an
// admin reaches it (here it answers that direct mode has nothing to
// reconcile, as no Reconciler is set).
func TestReconcileSaleIsAdminOnly(t *testing.T) {
	sales := flashsalev1.NewFlashSaleServiceClient(serve(t, newTestServer()))
	req := &flashsalev1.ReconcileSaleRequest{Id: uuid.NewString()}
	for _, tc := range []struct {
		token string
		want  codes.Code
	}{
		{"", codes.Unauthenticated},
		{"forged", codes.Unauthenticated},
		{"customer", codes.PermissionDenied},
		{"admin", codes.FailedPrecondition},
	} {
		ctx := t.Context()
		if tc.token != "" {
			ctx = withToken(ctx, tc.token)
		}
		_, err := sales.ReconcileSale(ctx, req)
		if got := status.Code(err); got != tc.want {
			t.Errorf("ReconcileSale with token %q = %v, want %v", tc.token, err, tc.want)
		}
	}
}
