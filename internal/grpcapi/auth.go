package grpcapi

import (
	"context"
	"log/slog"
	"time"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
	"github.com/flashsale/flashsale/internal/auth"
)

// Authenticator signs users up and in, and turns a token into a caller.
type Authenticator interface {
	Register(ctx context.Context, email, password string) (auth.User, string, time.Time, error)
	Login(ctx context.Context, email, password string) (auth.User, string, time.Time, error)
	Authenticate(ctx context.Context, token string) (auth.Caller, error)
}

type authServer struct {
	flashsalev1.UnimplementedAuthServiceServer
	auth Authenticator
	log  *slog.Logger
}

func (s *authServer) Register(ctx context.Context, req *flashsalev1.RegisterRequest) (*flashsalev1.RegisterResponse, error) {
	if err := checkText(req); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	u, token, exp, err := s.auth.Register(ctx, req.GetEmail(), req.GetPassword())
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &flashsalev1.RegisterResponse{User: userToProto(u), AccessToken: token, ExpiresAt: ts(exp)}, nil
}

func (s *authServer) Login(ctx context.Context, req *flashsalev1.LoginRequest) (*flashsalev1.LoginResponse, error) {
	if err := checkText(req); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	u, token, exp, err := s.auth.Login(ctx, req.GetEmail(), req.GetPassword())
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &flashsalev1.LoginResponse{User: userToProto(u), AccessToken: token, ExpiresAt: ts(exp)}, nil
}
