package grpcapi

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
	"github.com/flashsale/flashsale/internal/product"
)

// Products is the store of products.
type Products interface {
	ProductCreate(ctx context.Context, p product.Product) (product.Product, error)
	ProductGet(ctx context.Context, id uuid.UUID) (product.Product, error)
	ProductList(ctx context.Context, after uuid.UUID, limit int) ([]product.Product, error)
}

// Limits on product fields. Numbers stay within what a JavaScript number
// (the web page, most JSON clients) holds exactly, 2^53 - 1
// (Number.MAX_SAFE_INTEGER): protojson writes an int64 as a JSON string,
// but a client reading it as a number would round anything larger.
// quantity is an int32, and bounded well below that.
const (
	maxNameLen        = 200
	maxDescriptionLen = 5000
	maxPriceMinor     = 1<<53 - 1
	maxQuantity       = 100_000_000
)

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

type productServer struct {
	flashsalev1.UnimplementedProductServiceServer
	products Products
	now      func() time.Time
	log      *slog.Logger
}

func (s *productServer) CreateProduct(ctx context.Context, req *flashsalev1.CreateProductRequest) (*flashsalev1.CreateProductResponse, error) {
	if err := checkText(req); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	var fe fieldErrors
	name := strings.TrimSpace(req.GetName())
	switch {
	case name == "":
		fe.add("name", "is required")
	case utf8.RuneCountInString(name) > maxNameLen:
		fe.add("name", fmt.Sprintf("must be at most %d characters", maxNameLen))
	}
	if utf8.RuneCountInString(req.GetDescription()) > maxDescriptionLen {
		fe.add("description", fmt.Sprintf("must be at most %d characters", maxDescriptionLen))
	}
	if p := req.GetPriceMinor(); p < 0 || p > maxPriceMinor {
		fe.add("price_minor", fmt.Sprintf("must be between 0 and %d (2^53 - 1)", int64(maxPriceMinor)))
	}
	currency := strings.ToUpper(strings.TrimSpace(req.GetCurrency()))
	if !currencyRE.MatchString(currency) {
		fe.add("currency", "must be a three-letter ISO 4217 code")
	}
	if q := req.GetQuantity(); q < 0 || q > maxQuantity {
		fe.add("quantity", fmt.Sprintf("must be between 0 and %d", maxQuantity))
	}
	if err := fe.err(); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	p, err := s.products.ProductCreate(ctx, product.Product{
		ID:          id,
		Name:        name,
		Description: req.GetDescription(),
		PriceMinor:  req.GetPriceMinor(),
		Currency:    currency,
		Quantity:    req.GetQuantity(),
		CreatedAt:   s.now(),
	})
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &flashsalev1.CreateProductResponse{Product: productToProto(p)}, nil
}

func (s *productServer) GetProduct(ctx context.Context, req *flashsalev1.GetProductRequest) (*flashsalev1.GetProductResponse, error) {
	if err := checkText(req); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	var fe fieldErrors
	id := parseID(&fe, "id", req.GetId())
	if err := fe.err(); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	p, err := s.products.ProductGet(ctx, id)
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &flashsalev1.GetProductResponse{Product: productToProto(p)}, nil
}

func (s *productServer) ListProducts(ctx context.Context, req *flashsalev1.ListProductsRequest) (*flashsalev1.ListProductsResponse, error) {
	if err := checkText(req); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	var fe fieldErrors
	after, limit := parsePage(&fe, req.GetPageSize(), req.GetPageToken())
	if err := fe.err(); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	ps, err := s.products.ProductList(ctx, after, limit)
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	resp := &flashsalev1.ListProductsResponse{Products: make([]*flashsalev1.Product, 0, len(ps))}
	for _, p := range ps {
		resp.Products = append(resp.Products, productToProto(p))
	}
	if len(ps) > 0 {
		resp.NextPageToken = nextPageToken(len(ps), limit, ps[len(ps)-1].ID)
	}
	return resp, nil
}
