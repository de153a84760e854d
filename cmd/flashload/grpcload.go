package main

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bojand/ghz/runner"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
)

// Operations a run can drive.
const (
	opOrder  = "order"
	opStatus = "status"
	opHealth = "health"
)

// load is one stream of calls of a single op.
type load struct {
	op          string
	concurrency int
	connections int
	requests    int // 0: until duration
	duration    time.Duration
	rate        int
	warmup      int
	timeout     time.Duration
	// users are the customers orders are placed as; pick chooses the
	// index of request number n's user (order only).
	users []user
	pick  func(n int64) int
	// tried and flags are per user: whether it sent a request, and which
	// classes of answer it got (REST only, which can attribute them).
	tried  []atomic.Bool
	flags  []atomic.Uint32
	target target
	rec    *recorder
	tls    clientTLS
}

// protoset is the descriptor set ghz needs, built from the compiled-in
// descriptors so neither proto files nor server reflection are needed.
func protoset() ([]byte, error) {
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imps := fd.Imports()
		for i := range imps.Len() {
			add(imps.Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}
	add(flashsalev1.File_flashsale_v1_order_proto)
	add(flashsalev1.File_flashsale_v1_flash_sale_proto)
	add(healthpb.File_grpc_health_v1_health_proto)
	return proto.Marshal(set)
}

// readingCodec is the proto codec for the load's calls, which decodes a
// response only as far as the harness reads it: a PlaceOrder response into
// the order it acknowledges (handed to the recorder, so the harness learns
// the acknowledged order ids although ghz keeps responses to itself), any
// other response not at all. ghz itself never looks at a response, and
// decoding one into its dynamic message took client CPU the server on the
// same machine could use.
type readingCodec struct {
	encoding.CodecV2
	rec   *recorder // told of every acknowledged order
	order bool      // the responses are PlaceOrderResponses
}

func (c readingCodec) Unmarshal(data mem.BufferSlice, _ any) error {
	if !c.order {
		return nil
	}
	var res flashsalev1.PlaceOrderResponse
	if err := proto.Unmarshal(data.Materialize(), &res); err != nil {
		return err
	}
	if id := res.GetOrder().GetId(); id != "" {
		c.rec.ack(id, res.GetOrder().GetUserId())
	}
	return nil
}

// classifyGRPC names a call's outcome (code and ErrorInfo reason) and its
// class; transport is true for errors that never reached the service.
//
// The refusals (FailedPrecondition, AlreadyExists, ResourceExhausted) are
// remembered by code and message, which the server keeps apart for each
// reason: a rush is mostly the same few refusals, and decoding each one's
// details (an Any per detail) took client CPU that the server, on the same
// machine, could use.
func classifyGRPC(err error) (outcome, class string, transport bool) {
	if err == nil {
		return "OK", classOK, false
	}
	st := status.Convert(err)
	switch st.Code() {
	case codes.FailedPrecondition, codes.AlreadyExists, codes.ResourceExhausted:
		key := refusalKey{st.Code(), st.Message()}
		if c, ok := refusals.Load(key); ok {
			r := c.(refusalClass)
			return r.outcome, r.class, false
		}
		outcome, class, _ = classifyStatus(st)
		refusals.Store(key, refusalClass{outcome, class})
		return outcome, class, false
	}
	return classifyStatus(st)
}

type refusalKey struct {
	code    codes.Code
	message string
}

type refusalClass struct{ outcome, class string }

// refusals memoizes classifyGRPC for the refusals.
var refusals sync.Map

func classifyStatus(st *status.Status) (outcome, class string, transport bool) {
	outcome = st.Code().String()
	var reason string
	var retry bool
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			reason = d.GetReason()
		case *errdetails.RetryInfo:
			retry = true
		}
	}
	if reason != "" {
		outcome += "/" + reason
	}
	switch st.Code() {
	case codes.FailedPrecondition, codes.AlreadyExists, codes.NotFound, codes.InvalidArgument,
		codes.PermissionDenied, codes.Unauthenticated, codes.OutOfRange:
		return outcome, classRejected, false
	case codes.ResourceExhausted:
		return outcome, classThrottled, false
	}
	if namesAnOrder(reason) {
		return outcome, classAmbiguous, false
	}
	if retry {
		return outcome, classThrottled, false
	}
	transport = reason == "" && len(st.Details()) == 0 &&
		(st.Code() == codes.Unavailable || st.Code() == codes.DeadlineExceeded || st.Code() == codes.Canceled || st.Code() == codes.Unknown)
	return outcome, classAmbiguous, transport
}

// runGRPCFleet drives l against every address at once, one ghz runner
// each with an even share of the concurrency, connections, requests and
// rate; runner k's request n is the load's request n*len(addrs)+k, so the
// users are dealt out as with one runner. It returns the longest runner's
// time and the transport errors of all.
func runGRPCFleet(addrs []string, l load, set []byte) (time.Duration, int64, error) {
	if len(addrs) == 1 {
		return runGRPC(addrs[0], l, set)
	}
	n := len(addrs)
	share := func(v, k int) int { // v split n ways, the remainder to the first
		s := v / n
		if k < v%n {
			s++
		}
		return s
	}
	type result struct {
		d   time.Duration
		te  int64
		err error
	}
	results := make(chan result, n)
	for k, addr := range addrs {
		lk := l
		lk.concurrency = max(1, share(l.concurrency, k))
		lk.connections = max(1, share(l.connections, k))
		if l.requests > 0 {
			lk.requests = share(l.requests, k)
			if lk.requests == 0 {
				results <- result{}
				continue
			}
		}
		if l.rate > 0 {
			lk.rate = max(1, share(l.rate, k))
		}
		lk.warmup = share(l.warmup, k)
		if l.pick != nil {
			stride, offset := int64(n), int64(k)
			lk.pick = func(r int64) int { return l.pick(r*stride + offset) }
		}
		go func() {
			d, te, err := runGRPC(addr, lk, set)
			results <- result{d, te, err}
		}()
	}
	var longest time.Duration
	var te int64
	var errs []error
	for range n {
		r := <-results
		longest, te = max(longest, r.d), te+r.te
		errs = append(errs, r.err)
	}
	return longest, te, errors.Join(errs...)
}

// runGRPC drives l with ghz's runner against addr and returns how long it
// took and how many calls failed in transport.
func runGRPC(addr string, l load, set []byte) (time.Duration, int64, error) {
	var call string
	var data any
	switch l.op {
	case opOrder:
		call, data = "flashsale.v1.OrderService.PlaceOrder", map[string]any{"product_id": l.target.ProductID}
	case opStatus:
		call, data = "flashsale.v1.FlashSaleService.GetSaleStatus", map[string]any{"product_id": l.target.ProductID}
	case opHealth:
		call, data = "grpc.health.v1.Health.Check", map[string]any{}
	default:
		return 0, 0, fmt.Errorf("unknown op %q", l.op)
	}
	var transportErrs atomic.Int64
	callOpts := []grpc.CallOption{
		grpc.OnFinish(func(err error) {
			outcome, class, transport := classifyGRPC(err)
			if transport {
				transportErrs.Add(1)
			}
			msg := ""
			if err != nil {
				msg = status.Convert(err).Message()
			}
			l.rec.record(outcome, class, "", msg, 0)
		}),
	}
	callOpts = append(callOpts, grpc.ForceCodecV2(readingCodec{CodecV2: encoding.GetCodecV2("proto"), rec: l.rec, order: l.op == opOrder}))
	n := l.requests
	if n <= 0 {
		n = math.MaxInt32
	}
	opts := []runner.Option{
		runner.WithProtosetBinary(set),
		runner.WithConcurrency(uint(l.concurrency)),
		runner.WithConnections(uint(max(1, min(l.connections, l.concurrency)))),
		runner.WithTotalRequests(uint(n)),
		runner.WithRPS(uint(l.rate)),
		runner.WithSkipFirst(uint(l.warmup)),
		runner.WithTimeout(l.timeout),
		runner.WithDurationStopAction("wait"),
		runner.WithData(data),
		runner.WithDisableTemplateFuncs(true),
		runner.WithDisableTemplateData(true),
		runner.WithDefaultCallOptions(callOpts),
	}
	opts = append(opts, l.tls.ghzOptions()...)
	if l.op == opOrder {
		bearer := make([]string, len(l.users)) // built once, not per call
		for i, u := range l.users {
			bearer[i] = "Bearer " + u.Token
		}
		opts = append(opts, runner.WithMetadataProvider(func(cd *runner.CallData) (*metadata.MD, error) {
			i := l.pick(cd.RequestNumber)
			l.tried[i].Store(true)
			md := metadata.MD{"authorization": {bearer[i]}}
			return &md, nil
		}))
	}
	cfg, err := runner.NewConfig(call, addr, opts...)
	if err != nil {
		return 0, 0, fmt.Errorf("ghz config: %w", err)
	}
	req, err := runner.NewRequester(cfg)
	if err != nil {
		return 0, 0, fmt.Errorf("ghz: %w", err)
	}
	done := make(chan struct{})
	if l.duration > 0 {
		go func() {
			select {
			case <-done:
			case <-time.After(l.duration):
				// Stop panics if Run has just returned; then there is
				// nothing left to stop.
				defer func() { _ = recover() }()
				req.Stop(runner.ReasonTimeout)
			}
		}()
	}
	report, err := req.Run()
	close(done)
	if err != nil && report == nil {
		return 0, 0, fmt.Errorf("ghz run: %w", err)
	}
	lat := make([]time.Duration, 0, len(report.Details))
	for _, d := range report.Details {
		lat = append(lat, d.Latency)
	}
	l.rec.mu.Lock()
	l.rec.latencies = append(l.rec.latencies, lat...)
	l.rec.mu.Unlock()
	return report.Total, transportErrs.Load(), nil
}
