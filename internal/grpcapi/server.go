// Package grpcapi is the gRPC transport: one server per proto service, the
// interceptors every call goes through (REST included: the gateway calls in
// through the in-process Channel), and
// toStatus, the one place domain errors become gRPC statuses.
package grpcapi

import (
	"context"
	"log/slog"
	"runtime"
	"time"

	"github.com/fullstorydev/grpchan"
	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	grpcauth "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
	"github.com/flashsale/flashsale/internal/auth"
)

// MaxMessageBytes caps a request body, over gRPC and REST alike.
const MaxMessageBytes = 1 << 20

// Deps is what the servers are built from.
type Deps struct {
	Auth     Authenticator
	Products Products
	Sales    Sales
	Orders   Orders
	Now      func() time.Time
	Log      *slog.Logger
	Metrics  prometheus.Registerer
	// Limits, when set, puts token buckets in front of the API (RL_*).
	Limits *Limits
	// SaleService creates sales and answers GetSaleStatus and
	// WatchSaleStatus (the order service).
	SaleService SaleService
	// ClientIP says who is calling, for per-IP limits; nil trusts no
	// proxy (every REST call then counts as its TCP peer's).
	ClientIP *ClientIP
	// WatchMaxStreams and WatchMaxStreamsPerIP cap the open
	// WatchSaleStatus streams in all and per client address (0: the
	// defaults); they hold with rate limits off too.
	WatchMaxStreams, WatchMaxStreamsPerIP int
	// Reconciler rebuilds a sale's gate state (ReconcileSale); nil in direct mode.
	Reconciler Reconciler
	// AccessLogPerSecond is the budget of access-log lines a second
	// (LOG_ACCESS_PER_SECOND); failures are logged whatever it says. 0:
	// a line for every call.
	AccessLogPerSecond int
	// TracerProvider, when set, traces the sampled flashsale calls,
	// continuing the trace of a caller that sends W3C traceparent
	// metadata; nil: no tracing interceptor at all.
	TracerProvider trace.TracerProvider
}

// Server is the gRPC server with its health service, so shutdown can mark it
// NOT_SERVING before draining.
type Server struct {
	*grpc.Server
	Health *health.Server
	// Channel reaches the same services through the same interceptors
	// from this process, for the REST gateway.
	Channel *Channel

	endStreams context.CancelFunc
}

// EndStreams ends the streaming calls in flight (WatchSaleStatus, health
// Watch), and those started later at once, with Unavailable: watchers never
// end by themselves, so without it a graceful stop would wait for them
// until its deadline. Their clients reconnect, to another server.
func (s *Server) EndStreams() { s.endStreams() }

// errShuttingDown ends a stream cut short by EndStreams.
var errShuttingDown = status.Error(codes.Unavailable, "server shutting down; reconnect")

// endOnShutdown ends each stream when ctx is done (EndStreams).
func endOnShutdown(ctx context.Context) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if ctx.Err() != nil {
			return errShuttingDown
		}
		parent := ss.Context()
		sctx, cancel := context.WithCancel(parent)
		defer cancel()
		// AfterFunc registers with ctx; no goroutine waits per stream.
		stop := context.AfterFunc(ctx, cancel)
		defer stop()
		err := handler(srv, streamWithContext{ServerStream: ss, ctx: sctx})
		if ctx.Err() != nil && parent.Err() == nil {
			return errShuttingDown
		}
		return err
	}
}

// streamWithContext is a stream whose handler sees ctx as its context.
type streamWithContext struct {
	grpc.ServerStream
	ctx context.Context
}

func (s streamWithContext) Context() context.Context { return s.ctx }

// NewServer builds the gRPC server: interceptors (metrics, the access log,
// authentication and authorization, panic recovery), the four
// flashsale services, grpc.health.v1 and server reflection.
func NewServer(d Deps) *Server {
	metrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
		grpcprom.WithHistogramBuckets([]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}),
	))
	outcomes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flashsale_order_outcomes_total",
		Help: "PlaceOrder results by outcome: CONFIRMED, PENDING, or the error reason (SOLD_OUT, ALREADY_ORDERED, SALE_NOT_ACTIVE, ...).",
	}, []string{"outcome"})
	refused := newRefusals()
	d.Metrics.MustRegister(metrics, outcomes, refused.vec)

	authn := grpcauth.UnaryServerInterceptor(authFunc(d.Auth, d.Log))
	authnStream := grpcauth.StreamServerInterceptor(authFunc(d.Auth, d.Log))
	recover := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		d.Log.ErrorContext(ctx, "panic in handler", "panic", p, "method", methodOf(ctx))
		return status.Error(codes.Internal, "internal error")
	})
	streamsEnded, endStreams := context.WithCancel(context.Background())
	unary := []grpc.UnaryServerInterceptor{defaultDeadline(callTimeout), metrics.UnaryServerInterceptor()}
	stream := []grpc.StreamServerInterceptor{metrics.StreamServerInterceptor()}
	if d.TracerProvider != nil {
		// First, so a call's span covers the whole chain.
		t := newServerTracing(d.TracerProvider)
		unary = append([]grpc.UnaryServerInterceptor{t.unary}, unary...)
		stream = append([]grpc.StreamServerInterceptor{t.stream}, stream...)
	}
	// The access log: a line per call within LOG_ACCESS_PER_SECOND, every
	// failure whatever the budget (accesslog.go).
	access := newAccessLog(d.Log, d.AccessLogPerSecond)
	unary = append(unary, access.unary)
	stream = append(stream, access.stream)
	// Every call, public ones too, goes through authFunc: it is where a
	// method without an access rule is refused. (grpcauth would skip it for
	// a service implementing ServiceAuthFuncOverride; none here does.)
	unary = append(unary, authn)
	stream = append(stream, authnStream)
	if d.Limits != nil {
		limits := newLimiter(*d.Limits, d.ClientIP, d.Log, refused)
		unary = append(unary, limits.unary)
		stream = append(stream, limits.stream)
	}
	unary = append(unary, recovery.UnaryServerInterceptor(recover))
	stream = append(stream, recovery.StreamServerInterceptor(recover))
	stream = append(stream,
		// Innermost, so the access log and metrics see how it ended.
		endOnShutdown(streamsEnded),
	)
	// The services are registered once, in a map, and from there with the
	// network's server and with the in-process Channel: one set of
	// handlers, one chain of interceptors, two transports.
	services := grpchan.HandlerMap{}
	flashsalev1.RegisterAuthServiceServer(services, &authServer{auth: d.Auth, log: d.Log})
	flashsalev1.RegisterProductServiceServer(services, &productServer{products: d.Products, now: d.Now, log: d.Log})
	sales := &flashSaleServer{sales: d.Sales, service: d.SaleService, reconciler: d.Reconciler, now: d.Now, log: d.Log, ips: d.ClientIP}
	sales.watch = newWatchHub(sales.saleStatus, d.WatchMaxStreams, d.WatchMaxStreamsPerIP, d.Log)
	sales.watch.refused = refused
	flashsalev1.RegisterFlashSaleServiceServer(services, sales)
	flashsalev1.RegisterOrderServiceServer(services, &orderServer{orders: d.Orders, outcomes: outcomes, log: d.Log})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(services, hs)

	s := grpc.NewServer(
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		// A Stop that cuts calls short still waits for their handlers, so
		// none of them runs on once its owner goes on to close the stores.
		grpc.WaitForHandlers(true),
		// Reused workers keep the stacks the interceptor chain grew, instead
		// of growing a fresh goroutine's stack on every call. When every
		// worker is busy gRPC starts a fresh goroutine, so there are enough
		// for the callers a core serves at once: with 4 a core and 100
		// concurrent callers on 2 cores, copying growing stacks took a tenth
		// of the server; with 64 a core the rush ran ~12 % faster.
		grpc.NumStreamWorkers(uint32(64*runtime.GOMAXPROCS(0))),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	)
	services.ForEach(s.RegisterService)
	reflection.Register(s) // for grpcurl, over the network only
	metrics.InitializeMetrics(s)
	return &Server{Server: s, Health: hs, Channel: newChannel(services, unary, stream), endStreams: endStreams}
}

// callTimeout bounds a unary call whose client set no deadline (calls
// through the REST gateway never carry one), so a hung dependency cannot
// hold a call, and its goroutine, forever.
const callTimeout = 30 * time.Second

func defaultDeadline(d time.Duration) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return handler(ctx, req)
	}
}

// access is who may call a method. Its zero value, noRule, is what a method
// missing from methodAccess gets, and such a method is refused: a new RPC is
// closed to everyone until someone decides who may call it.
type access int

const (
	noRule   access = iota // not in methodAccess: refused
	public                 // anyone, no token
	customer               // any signed-in, enabled user
	admin                  // signed-in admins only
)

// methodAccess is the rule of every method the server registers. A test
// (TestEveryMethodHasARule) fails when a registered method is missing here.
var methodAccess = map[string]access{
	flashsalev1.AuthService_Register_FullMethodName:             public,
	flashsalev1.AuthService_Login_FullMethodName:                public,
	flashsalev1.ProductService_CreateProduct_FullMethodName:     admin,
	flashsalev1.ProductService_GetProduct_FullMethodName:        public,
	flashsalev1.ProductService_ListProducts_FullMethodName:      public,
	flashsalev1.FlashSaleService_CreateFlashSale_FullMethodName: admin,
	flashsalev1.FlashSaleService_GetFlashSale_FullMethodName:    public,
	flashsalev1.FlashSaleService_ListFlashSales_FullMethodName:  public,
	flashsalev1.FlashSaleService_GetSaleStatus_FullMethodName:   public,
	flashsalev1.FlashSaleService_WatchSaleStatus_FullMethodName: public,
	// Reconciling rewrites the gate's stock and buyers; a customer calling
	// it during a sale could make the gate forget the buyers it admitted.
	flashsalev1.FlashSaleService_ReconcileSale_FullMethodName: admin,
	flashsalev1.OrderService_PlaceOrder_FullMethodName:        customer,
	flashsalev1.OrderService_CheckOrder_FullMethodName:        customer,
	flashsalev1.OrderService_ListOrders_FullMethodName:        customer,

	// Probes and grpcurl call these without a token.
	healthpb.Health_Check_FullMethodName: public,
	healthpb.Health_List_FullMethodName:  public,
	healthpb.Health_Watch_FullMethodName: public,

	reflectionv1.ServerReflection_ServerReflectionInfo_FullMethodName:      public,
	reflectionv1alpha.ServerReflection_ServerReflectionInfo_FullMethodName: public,
}

func accessOf(fullMethod string) access { return methodAccess[fullMethod] }

func methodOf(ctx context.Context) string {
	m, _ := grpc.Method(ctx)
	return m
}

// authFunc applies the method's access rule: it refuses a method without
// one, lets a public method through, and otherwise checks the bearer token,
// puts the caller in the context and refuses non-admins on admin methods.
func authFunc(a Authenticator, log *slog.Logger) grpcauth.AuthFunc {
	return func(ctx context.Context) (context.Context, error) {
		method := methodOf(ctx)
		rule := accessOf(method)
		switch rule {
		case public:
			return ctx, nil
		case customer, admin:
		default:
			log.ErrorContext(ctx, "method without an access rule refused; add it to methodAccess", "method", method)
			return nil, status.Errorf(codes.PermissionDenied, "%s has no access rule, so no one may call it", method)
		}
		token, err := grpcauth.AuthFromMD(ctx, "bearer")
		if err != nil {
			return nil, status.Error(codes.Unauthenticated, "missing bearer token in authorization metadata")
		}
		caller, err := a.Authenticate(ctx, token)
		if err != nil {
			return nil, toStatus(ctx, log, err)
		}
		if rule == admin && !caller.IsAdmin() {
			return nil, toStatus(ctx, log, auth.ErrPermissionDenied)
		}
		return auth.WithCaller(ctx, caller), nil
	}
}
