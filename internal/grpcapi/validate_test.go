package grpcapi

import (
	"context"
	"io"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
	"github.com/flashsale/flashsale/internal/product"
	"github.com/flashsale/flashsale/internal/sale"
)

// refusingProducts and refusingSales fail the test if a request that should
// have been refused reaches the store.
type refusingProducts struct {
	Products
	t *testing.T
}

func (s refusingProducts) ProductCreate(context.Context, product.Product) (product.Product, error) {
	s.t.Error("invalid product reached the store")
	return product.Product{}, nil
}

type refusingSales struct {
	Sales
	t *testing.T
}

func (s refusingSales) SaleCreate(context.Context, sale.Sale) (sale.Sale, error) {
	s.t.Error("invalid sale reached the store")
	return sale.Sale{}, nil
}

func violations(err error) string {
	var fields []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return strings.Join(fields, ",")
}

func TestCreateProductValidation(t *testing.T) {
	srv := &productServer{products: refusingProducts{t: t}, now: time.Now, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ok := func() *flashsalev1.CreateProductRequest {
		return &flashsalev1.CreateProductRequest{Name: "Shoe", PriceMinor: 100, Currency: "EUR", Quantity: 1}
	}
	tests := []struct {
		name   string
		change func(*flashsalev1.CreateProductRequest)
		want   string
	}{
		{"no name", func(r *flashsalev1.CreateProductRequest) { r.Name = "  " }, "name"},
		{"long name", func(r *flashsalev1.CreateProductRequest) { r.Name = strings.Repeat("x", maxNameLen+1) }, "name"},
		{"long description", func(r *flashsalev1.CreateProductRequest) { r.Description = strings.Repeat("x", maxDescriptionLen+1) }, "description"},
		{"negative price", func(r *flashsalev1.CreateProductRequest) { r.PriceMinor = -1 }, "price_minor"},
		{"price over 2^53 - 1", func(r *flashsalev1.CreateProductRequest) { r.PriceMinor = 1 << 53 }, "price_minor"},
		{"price 2^53 + 1", func(r *flashsalev1.CreateProductRequest) { r.PriceMinor = 1<<53 + 1 }, "price_minor"},
		{"largest int64 price", func(r *flashsalev1.CreateProductRequest) { r.PriceMinor = math.MaxInt64 }, "price_minor"},
		{"currency too long", func(r *flashsalev1.CreateProductRequest) { r.Currency = "EURO" }, "currency"},
		{"currency digits", func(r *flashsalev1.CreateProductRequest) { r.Currency = "E1R" }, "currency"},
		{"negative quantity", func(r *flashsalev1.CreateProductRequest) { r.Quantity = -1 }, "quantity"},
		{"huge quantity", func(r *flashsalev1.CreateProductRequest) { r.Quantity = maxQuantity + 1 }, "quantity"},
		{"everything", func(r *flashsalev1.CreateProductRequest) {
			*r = flashsalev1.CreateProductRequest{Currency: "x", Quantity: -1, PriceMinor: -1}
		}, "name,price_minor,currency,quantity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := ok()
			tt.change(req)
			_, err := srv.CreateProduct(context.Background(), req)
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("code = %v, want InvalidArgument", status.Code(err))
			}
			if got := violations(err); got != tt.want {
				t.Errorf("violations = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCreateFlashSaleValidation(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	srv := &flashSaleServer{sales: refusingSales{t: t}, now: func() time.Time { return now }, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	pid := uuid.NewString()
	at := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(d)) }
	tests := []struct {
		name string
		req  *flashsalev1.CreateFlashSaleRequest
		want string
	}{
		{"nothing", &flashsalev1.CreateFlashSaleRequest{}, "product_id,starts_at,ends_at"},
		{"product not a uuid", &flashsalev1.CreateFlashSaleRequest{ProductId: "p1", StartsAt: at(0), EndsAt: at(time.Hour)}, "product_id"},
		{"bad timestamp", &flashsalev1.CreateFlashSaleRequest{ProductId: pid, StartsAt: &timestamppb.Timestamp{Nanos: -1}, EndsAt: at(time.Hour)}, "starts_at"},
		{"empty window", &flashsalev1.CreateFlashSaleRequest{ProductId: pid, StartsAt: at(time.Hour), EndsAt: at(time.Hour)}, "ends_at"},
		{"reversed window", &flashsalev1.CreateFlashSaleRequest{ProductId: pid, StartsAt: at(2 * time.Hour), EndsAt: at(time.Hour)}, "ends_at"},
		{"ends in the past", &flashsalev1.CreateFlashSaleRequest{ProductId: pid, StartsAt: at(-2 * time.Hour), EndsAt: at(-time.Hour)}, "ends_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := srv.CreateFlashSale(context.Background(), tt.req)
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("code = %v, want InvalidArgument", status.Code(err))
			}
			if got := violations(err); got != tt.want {
				t.Errorf("violations = %q, want %q", got, tt.want)
			}
		})
	}
}

// acceptingProducts stores what it is given.
type acceptingProducts struct {
	Products
	got []product.Product
}

func (s *acceptingProducts) ProductCreate(_ context.Context, p product.Product) (product.Product, error) {
	s.got = append(s.got, p)
	return p, nil
}

// TestCreateProductBounds: the largest price and stock allowed are taken as
// they are, and each fits a JavaScript number exactly (the bound the web
// page and JSON clients need); one more is refused (TestCreateProductValidation).
func TestCreateProductBounds(t *testing.T) {
	if maxPriceMinor != 1<<53-1 || maxQuantity > 1<<53-1 || maxQuantity > math.MaxInt32 {
		t.Fatalf("bounds %d, %d: want 2^53 - 1 and at most that and an int32", int64(maxPriceMinor), maxQuantity)
	}
	store := &acceptingProducts{}
	srv := &productServer{products: store, now: time.Now, log: slog.New(slog.DiscardHandler)}
	resp, err := srv.CreateProduct(context.Background(), &flashsalev1.CreateProductRequest{
		Name: "Yacht", PriceMinor: maxPriceMinor, Currency: "EUR", Quantity: maxQuantity,
	})
	if err != nil {
		t.Fatalf("CreateProduct at the bounds: %v", err)
	}
	if got := resp.GetProduct(); got.GetPriceMinor() != maxPriceMinor || got.GetQuantity() != maxQuantity {
		t.Errorf("product = %v, want price %d and quantity %d", got, int64(maxPriceMinor), maxQuantity)
	}
	if float64(maxPriceMinor) != float64(maxPriceMinor-1)+1 || int64(float64(maxPriceMinor)) != maxPriceMinor {
		t.Errorf("%d is not exact as a float64", int64(maxPriceMinor))
	}
}
