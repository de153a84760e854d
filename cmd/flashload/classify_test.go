package main

import (
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// TestClassify: an answer that names an order the server took but cannot
// vouch for yet (not replicated, outcome unknown, in progress) is
// ambiguous, not shed: the invariant check must not call its order a
// phantom. Shed calls and refusals keep their classes, asked twice (the
// second answer comes from what classify remembers).
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name   string
		code   codes.Code
		reason string
		retry  bool
		want   string
	}{
		{"not replicated", codes.Unavailable, "ORDER_NOT_REPLICATED", true, classAmbiguous},
		{"outcome unknown", codes.Unavailable, "ORDER_OUTCOME_UNKNOWN", true, classAmbiguous},
		{"in progress", codes.Unavailable, "ORDER_IN_PROGRESS", true, classAmbiguous},
		{"queue busy", codes.Unavailable, "QUEUE_BUSY", true, classThrottled},
		{"rate limited", codes.ResourceExhausted, "RATE_LIMITED", true, classThrottled},
		{"sold out", codes.FailedPrecondition, "SOLD_OUT", false, classRejected},
	} {
		st := status.New(tc.code, tc.name)
		if tc.reason != "" {
			st, _ = st.WithDetails(&errdetails.ErrorInfo{Reason: tc.reason, Domain: "flashsale"})
		}
		if tc.retry {
			st, _ = st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)})
		}
		for range 2 {
			if _, class, _ := classifyGRPC(st.Err()); class != tc.want {
				t.Errorf("gRPC %s: class %s, want %s", tc.name, class, tc.want)
			}
		}
	}
	for _, tc := range []struct {
		name, body string
		code       int
		want       string
	}{
		{"not replicated", `{"code":14,"message":"order not confirmed on a replica","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"ORDER_NOT_REPLICATED"}]}`, 503, classAmbiguous},
		{"outcome unknown", `{"code":14,"message":"the order may or may not be stored","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"ORDER_OUTCOME_UNKNOWN"}]}`, 503, classAmbiguous},
		{"queue busy", `{"code":14,"message":"queue busy","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"QUEUE_BUSY"}]}`, 503, classThrottled},
		{"rate limited", `{"code":8,"message":"ip rate limit exceeded","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMITED"}]}`, 429, classThrottled},
		{"sold out", `{"code":9,"message":"sold out","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"SOLD_OUT"}]}`, 400, classRejected},
		{"bare 503", `{"code":14,"message":"unavailable"}`, 503, classAmbiguous},
	} {
		for range 2 {
			if _, class, _ := classifyREST(tc.code, []byte(tc.body)); class != tc.want {
				t.Errorf("REST %s: class %s, want %s", tc.name, class, tc.want)
			}
		}
	}
}
