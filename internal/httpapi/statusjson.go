package httpapi

import (
	"strconv"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/types/known/timestamppb"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
)

// jsonMarshaler is the gateway's JSON marshaler (protojson), but for the
// sale status, the one answer read at a rush's rate, which it writes
// itself: protojson walks a message by reflection, a tenth of the CPU of a
// status read. What it writes decodes, with protojson, to the same message
// (a test checks it over random statuses); a status it is not sure to
// write as protojson would (an unknown state, a missing or out-of-range
// time) goes to protojson.
type jsonMarshaler struct {
	*runtime.JSONPb
}

func (m jsonMarshaler) Marshal(v any) ([]byte, error) {
	if s, ok := v.(*flashsalev1.GetSaleStatusResponse); ok {
		if b, ok := appendSaleStatus(make([]byte, 0, 320), s); ok {
			return b, nil
		}
	}
	return m.JSONPb.Marshal(v)
}

// appendSaleStatus appends s as JSON, with the field names and encodings
// of protojson with EmitUnpopulated; false when s holds what it leaves to
// protojson.
func appendSaleStatus(b []byte, s *flashsalev1.GetSaleStatusResponse) ([]byte, bool) {
	state, ok := flashsalev1.SaleState_name[int32(s.GetState())]
	if !ok {
		return nil, false
	}
	b = append(b, `{"state":"`...)
	b = append(b, state...)
	b = append(b, `","flashSaleId":`...)
	if b, ok = appendPlain(b, s.GetFlashSaleId()); !ok {
		return nil, false
	}
	b = append(b, `,"productId":`...)
	if b, ok = appendPlain(b, s.GetProductId()); !ok {
		return nil, false
	}
	for _, f := range [...]struct {
		name string
		ts   *timestamppb.Timestamp
	}{{`,"startsAt":`, s.GetStartsAt()}, {`,"endsAt":`, s.GetEndsAt()}} {
		b = append(b, f.name...)
		if b, ok = appendTimestamp(b, f.ts); !ok {
			return nil, false
		}
	}
	b = append(b, `,"remaining":`...)
	b = strconv.AppendInt(b, int64(s.GetRemaining()), 10)
	b = append(b, `,"serverTime":`...)
	if b, ok = appendTimestamp(b, s.GetServerTime()); !ok {
		return nil, false
	}
	return append(b, '}'), true
}

// appendPlain appends s quoted, if it needs no escaping in JSON (ids do
// not); false otherwise.
func appendPlain(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return nil, false
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), true
}

// appendTimestamp appends ts as protojson does: RFC 3339 in UTC with 0, 3,
// 6 or 9 fractional digits. A nil ts (null) and one outside years 1-9999
// (an error in protojson) are left to protojson.
func appendTimestamp(b []byte, ts *timestamppb.Timestamp) ([]byte, bool) {
	if ts == nil || ts.CheckValid() != nil {
		return nil, false
	}
	t := ts.AsTime()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	b = append(b, '"')
	b = appendDigits(b, year, 4)
	b = appendDigits(append(b, '-'), int(month), 2)
	b = appendDigits(append(b, '-'), day, 2)
	b = appendDigits(append(b, 'T'), hour, 2)
	b = appendDigits(append(b, ':'), minute, 2)
	b = appendDigits(append(b, ':'), sec, 2)
	if nanos := t.Nanosecond(); nanos != 0 {
		b = append(b, '.')
		switch {
		case nanos%int(time.Millisecond) == 0:
			b = appendDigits(b, nanos/int(time.Millisecond), 3)
		case nanos%int(time.Microsecond) == 0:
			b = appendDigits(b, nanos/int(time.Microsecond), 6)
		default:
			b = appendDigits(b, nanos, 9)
		}
	}
	return append(b, `Z"`...), true
}

// appendDigits appends v, 0 <= v < 10^width, in width (at most 9) digits
// (time.Time.AppendFormat, which it replaces here, parses its layout on
// every call).
func appendDigits(b []byte, v, width int) []byte {
	var d [9]byte
	for i := width - 1; i >= 0; i-- {
		d[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, d[:width]...)
}
