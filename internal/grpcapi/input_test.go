package grpcapi

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
)

// rpc is one method of the four flashsale services, called on its handler
// directly (no interceptors) on a server whose stores are all nil: a
// request that gets past validation panics on them.
type rpc struct {
	name  string // full method name
	input protoreflect.MessageType
	call  func(ctx context.Context, req proto.Message) error
}

// try calls the method with req, returning what a panic carried instead of
// letting it end the test.
func (r rpc) try(ctx context.Context, req proto.Message) (err error, panicked any) {
	defer func() { panicked = recover() }()
	return r.call(ctx, req), nil
}

// recvStream is the server side of a streaming call that receives req and
// refuses to send anything.
type recvStream struct {
	ctx context.Context
	req proto.Message
}

func (s recvStream) SetHeader(metadata.MD) error  { return nil }
func (s recvStream) SendHeader(metadata.MD) error { return nil }
func (s recvStream) SetTrailer(metadata.MD)       {}
func (s recvStream) Context() context.Context     { return s.ctx }
func (s recvStream) SendMsg(any) error            { return fmt.Errorf("sent a message before validating") }
func (s recvStream) RecvMsg(m any) error {
	proto.Merge(m.(proto.Message), s.req)
	return nil
}

// everyRPC lists every method the proto files declare for the four
// services, failing the test when one has no handler here.
func everyRPC(t *testing.T) []rpc {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	services := []struct {
		desc *grpc.ServiceDesc
		srv  any
	}{
		{&flashsalev1.AuthService_ServiceDesc, &authServer{log: log}},
		{&flashsalev1.ProductService_ServiceDesc, &productServer{now: time.Now, log: log}},
		{&flashsalev1.FlashSaleService_ServiceDesc, &flashSaleServer{now: time.Now, log: log}},
		{&flashsalev1.OrderService_ServiceDesc, &orderServer{log: log}},
	}
	var out []rpc
	for _, svc := range services {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc.desc.ServiceName))
		if err != nil {
			t.Fatal(err)
		}
		methods := d.(protoreflect.ServiceDescriptor).Methods()
		for i := range methods.Len() {
			md := methods.Get(i)
			input, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
			if err != nil {
				t.Fatal(err)
			}
			r := rpc{name: "/" + svc.desc.ServiceName + "/" + string(md.Name()), input: input}
			for _, m := range svc.desc.Methods {
				if m.MethodName == string(md.Name()) {
					r.call = func(ctx context.Context, req proto.Message) error {
						dec := func(v any) error { proto.Merge(v.(proto.Message), req); return nil }
						_, err := m.Handler(svc.srv, ctx, dec, nil)
						return err
					}
				}
			}
			for _, st := range svc.desc.Streams {
				if st.StreamName == string(md.Name()) {
					r.call = func(ctx context.Context, req proto.Message) error {
						return st.Handler(svc.srv, recvStream{ctx: ctx, req: req})
					}
				}
			}
			if r.call == nil {
				t.Fatalf("%s has no handler in its ServiceDesc", r.name)
			}
			out = append(out, r)
		}
	}
	return out
}

// stringFields are the input's top-level string fields (none of the
// requests nests a message with text in it).
func stringFields(mt protoreflect.MessageType) []protoreflect.FieldDescriptor {
	var out []protoreflect.FieldDescriptor
	fields := mt.Descriptor().Fields()
	for i := range fields.Len() {
		if fd := fields.Get(i); fd.Kind() == protoreflect.StringKind && !fd.IsMap() {
			out = append(out, fd)
		}
	}
	return out
}

// withString is a new request of type mt with field fd set to s (as its one
// element when fd is a list).
func withString(mt protoreflect.MessageType, fd protoreflect.FieldDescriptor, s string) proto.Message {
	m := mt.New()
	if fd.IsList() {
		m.Mutable(fd).List().Append(protoreflect.ValueOfString(s))
	} else {
		m.Set(fd, protoreflect.ValueOfString(s))
	}
	return m.Interface()
}

func fieldViolations(err error) []*errdetails.BadRequest_FieldViolation {
	var out []*errdetails.BadRequest_FieldViolation
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			out = append(out, br.GetFieldViolations()...)
		}
	}
	return out
}

// wantViolation checks that err is InvalidArgument with a field violation
// on field whose description contains want; with only, it must be the one
// violation.
func wantViolation(t *testing.T, what string, err error, panicked any, field, want string, only bool) {
	t.Helper()
	if panicked != nil {
		t.Errorf("%s: got past validation to a store (panic: %v)", what, panicked)
		return
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("%s: %v, want InvalidArgument", what, err)
		return
	}
	v := fieldViolations(err)
	found := slices.ContainsFunc(v, func(v *errdetails.BadRequest_FieldViolation) bool {
		return v.GetField() == field && strings.Contains(v.GetDescription(), want)
	})
	if !found || only && len(v) != 1 {
		t.Errorf("%s: violations %v, want one on %s saying %q", what, v, field, want)
	}
}

// TestEveryTextFieldChecked: every string field of every request, set to
// text PostgreSQL cannot store (a NUL, invalid UTF-8), is refused with
// InvalidArgument and a violation on that field, before anything reaches a
// store: a NUL in a product name used to answer 500 (SQLSTATE 22021), and
// one in a login email too.
func TestEveryTextFieldChecked(t *testing.T) {
	bad := []struct{ text, problem string }{
		{"\x00", "NUL"},
		{"Shoe\x00", "NUL"},
		{"a@example.com\x00", "NUL"},
		{uuid.NewString() + "\x00", "NUL"},
		{"\xff", "UTF-8"},
		{"caf\xc3", "UTF-8"},
		{"\xed\xa0\x80", "UTF-8"}, // a UTF-16 surrogate half
	}
	var checked int
	for _, r := range everyRPC(t) {
		fields := stringFields(r.input)
		for _, fd := range fields {
			for _, b := range bad {
				err, panicked := r.try(t.Context(), withString(r.input, fd, b.text))
				field := string(fd.Name())
				if fd.IsList() {
					field += "[0]"
				}
				wantViolation(t, fmt.Sprintf("%s with %s=%q", r.name, fd.Name(), b.text), err, panicked, field, b.problem, true)
				checked++
			}
		}
	}
	if checked == 0 {
		t.Fatal("no string field found")
	}
}

// TestEveryIDFieldCanonical: every id field (id, *_id) of every request
// takes a UUID only in its canonical 8-4-4-4-12 spelling, in either case;
// the other spellings uuid.Parse knows are refused with a violation on the
// field.
func TestEveryIDFieldCanonical(t *testing.T) {
	id := uuid.MustParse("0190a8e4-3c5e-7000-8000-00000000002a")
	refused := []string{
		"{" + id.String() + "}",
		"urn:uuid:" + id.String(),
		strings.ReplaceAll(id.String(), "-", ""),
		" " + id.String(),
		id.String() + " ",
		"0190a8e4-3c5e-7000-8000-00000000002",   // a digit short
		"0190a8e4-3c5e-7000-8000-00000000002ab", // a digit long
		"0190a8e43-c5e-7000-8000-00000000002a",  // a hyphen misplaced
		"0190a8e4-3c5e-7000-8000-00000000002g",  // not hex
		"p1",
	}
	var checked int
	for _, r := range everyRPC(t) {
		for _, fd := range stringFields(r.input) {
			if name := string(fd.Name()); name != "id" && !strings.HasSuffix(name, "_id") {
				continue
			}
			for _, s := range refused {
				err, panicked := r.try(t.Context(), withString(r.input, fd, s))
				wantViolation(t, fmt.Sprintf("%s with %s=%q", r.name, fd.Name(), s), err, panicked, string(fd.Name()), "UUID", false)
				checked++
			}
		}
	}
	if checked == 0 {
		t.Fatal("no id field found")
	}
}

func TestParseID(t *testing.T) {
	id := uuid.MustParse("0190a8e4-3c5e-7000-8000-00000000002a")
	tests := []struct {
		in   string
		want uuid.UUID // uuid.Nil: refused
	}{
		{id.String(), id},
		{strings.ToUpper(id.String()), id}, // hex digits in either case (RFC 9562)
		{"0190A8E4-3c5e-7000-8000-00000000002A", id},
		{uuid.Nil.String(), uuid.Nil}, // canonical, and refused by no rule here: the stores answer NotFound
		{"", uuid.Nil},
		{"{" + id.String() + "}", uuid.Nil},
		{"urn:uuid:" + id.String(), uuid.Nil},
		{strings.ReplaceAll(id.String(), "-", ""), uuid.Nil},
	}
	for _, tt := range tests {
		var fe fieldErrors
		got := parseID(&fe, "id", tt.in)
		refused := len(fe) > 0
		if got != tt.want || refused != (tt.want == uuid.Nil && tt.in != uuid.Nil.String()) {
			t.Errorf("parseID(%q) = %v with violations %v, want %v", tt.in, got, fe, tt.want)
		}
	}
}

// TestCheckTextAcceptsText: what a text column holds passes, whatever the
// script, and a request without text passes too.
func TestCheckTextAcceptsText(t *testing.T) {
	for _, req := range []proto.Message{
		&flashsalev1.CreateProductRequest{Name: "Ünïcødé Shoe ✓ 靴 🥿", Description: "tab\tand\nnewline, \u00a0 and \u200b", Currency: "EUR"},
		&flashsalev1.RegisterRequest{Email: "me@example.com", Password: "pässwörd with spaces"},
		&flashsalev1.ListFlashSalesRequest{States: []flashsalev1.SaleState{flashsalev1.SaleState_SALE_STATE_ACTIVE}},
		&flashsalev1.CreateFlashSaleRequest{},
	} {
		if err := checkText(req); err != nil {
			t.Errorf("checkText(%v) = %v, want nil", req, fieldViolations(toStatus(context.Background(), slog.New(slog.DiscardHandler), err)))
		}
	}
}

// TestTextRefusedThroughServer: over gRPC, through the interceptors, a
// NUL in an admin's product name and in a login email is InvalidArgument
// with a violation on the field, not the 500 PostgreSQL's refusal was.
func TestTextRefusedThroughServer(t *testing.T) {
	conn := serve(t, newTestServer())
	ctx := withToken(t.Context(), "admin")
	_, err := flashsalev1.NewProductServiceClient(conn).CreateProduct(ctx, &flashsalev1.CreateProductRequest{
		Name: "Shoe\x00", Description: "ok", PriceMinor: 100, Currency: "EUR", Quantity: 1,
	})
	wantViolation(t, "CreateProduct", err, nil, "name", "NUL", true)
	_, err = flashsalev1.NewAuthServiceClient(conn).Login(t.Context(), &flashsalev1.LoginRequest{Email: "me\x00@example.com", Password: "x"})
	wantViolation(t, "Login", err, nil, "email", "NUL", true)
}
