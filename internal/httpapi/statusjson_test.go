package httpapi

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/google/uuid"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
)

// TestSaleStatusJSONIsProtojsons: over random sale statuses, including
// the ones left to protojson (no time, a time out of range, an unknown
// state, an id that needs escaping), the hand-written JSON decodes with
// protojson to the very message, and to the same JSON value protojson
// writes.
func TestSaleStatusJSONIsProtojsons(t *testing.T) {
	pb := &runtime.JSONPb{MarshalOptions: protojson.MarshalOptions{EmitUnpopulated: true}}
	m := jsonMarshaler{pb}
	rng := rand.New(rand.NewPCG(1, 2))
	timestamp := func() *timestamppb.Timestamp {
		switch rng.IntN(10) {
		case 0:
			return nil
		case 1:
			return &timestamppb.Timestamp{Seconds: -62135596800 - 1} // before year 1
		}
		nanos := []int32{0, 1, 999_999_999, 123_000_000, 123_456_000, 123_456_789, 1_000, 1_000_000}[rng.IntN(8)]
		return &timestamppb.Timestamp{Seconds: rng.Int64N(253402300799), Nanos: nanos}
	}
	id := func() string {
		switch rng.IntN(12) {
		case 0:
			return ""
		case 1:
			return "quote\" and \\ and \u00e9 and \x01"
		}
		return uuid.NewString()
	}
	hand := 0
	for range 5000 {
		s := &flashsalev1.GetSaleStatusResponse{
			State:       flashsalev1.SaleState(rng.IntN(6)), // some past the last state
			FlashSaleId: id(),
			ProductId:   id(),
			StartsAt:    timestamp(),
			EndsAt:      timestamp(),
			Remaining:   rng.Int32N(1 << 20),
			ServerTime:  timestamp(),
		}
		if rng.IntN(4) == 0 {
			s.Remaining = -s.Remaining
		}
		got, gotErr := m.Marshal(s)
		want, wantErr := pb.Marshal(s)
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("%v: error %v, protojson's %v", s, gotErr, wantErr)
		}
		if gotErr != nil {
			continue
		}
		if _, ok := appendSaleStatus(nil, s); ok {
			hand++
		}
		var back flashsalev1.GetSaleStatusResponse
		if err := protojson.Unmarshal(got, &back); err != nil || !proto.Equal(&back, s) {
			t.Fatalf("%s decodes to %v (%v), want %v", got, &back, err, s)
		}
		var gotV, wantV any
		if err := json.Unmarshal(got, &gotV); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		if err := json.Unmarshal(want, &wantV); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gotV, wantV) {
			t.Fatalf("wrote %s, protojson %s", got, want)
		}
	}
	if hand < 1000 {
		t.Errorf("only %d of 5000 statuses written by hand", hand)
	}
}
