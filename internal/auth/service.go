package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// UserStore is the storage the Service needs; internal/postgres implements it.
type UserStore interface {
	// UserCreate stores a new user; ErrEmailTaken when the email exists.
	UserCreate(ctx context.Context, u User, passwordHash string) (User, error)
	// UserByEmail returns a user and its password hash; ErrUserNotFound.
	UserByEmail(ctx context.Context, email string) (User, string, error)
	// UserStanding returns a user's role and disabled flag as they are now;
	// ErrUserNotFound when the user is gone.
	UserStanding(ctx context.Context, id uuid.UUID) (Standing, error)
	// UserUpsertAdmin creates the admin, or makes the existing account an
	// enabled admin with this password; id is used only on create.
	UserUpsertAdmin(ctx context.Context, id uuid.UUID, email, passwordHash string) (User, error)
}

// FieldViolation is one invalid field of a request.
type FieldViolation struct {
	Field       string
	Description string
}

// ValidationError lists every invalid field of a request. The transport
// turns it into InvalidArgument with BadRequest field violations.
type ValidationError struct {
	Violations []FieldViolation
}

// Error implements error.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Field + ": " + v.Description
	}
	return "invalid argument: " + strings.Join(parts, "; ")
}

// validateCredentials checks an already-normalised email and a password.
func validateCredentials(email, password string) error {
	var v []FieldViolation
	if err := ValidateEmail(email); err != nil {
		v = append(v, FieldViolation{Field: "email", Description: err.Error()})
	}
	switch n := utf8.RuneCountInString(password); {
	case n < MinPasswordLength:
		v = append(v, FieldViolation{Field: "password", Description: fmt.Sprintf("password must be at least %d characters", MinPasswordLength)})
	case n > MaxPasswordLength:
		v = append(v, FieldViolation{Field: "password", Description: fmt.Sprintf("password must be at most %d characters", MaxPasswordLength)})
	}
	if len(v) > 0 {
		return &ValidationError{Violations: v}
	}
	return nil
}

// dummyHash is compared against on logins for unknown emails, so that they
// take as long as a wrong password and do not reveal which emails exist.
var dummyHash = sync.OnceValues(func() (string, error) {
	return HashPassword("flashsale-dummy-password")
})

// Service registers users, logs them in, and authenticates their tokens.
type Service struct {
	users  UserStore
	tokens *Tokens
	hasher *Hasher
	now    func() time.Time
	logger *slog.Logger
}

// Option configures NewService.
type Option func(*Service)

// WithHasher runs the service's password hashes on h (AUTH_HASH_*)
// instead of a Hasher of the default size.
func WithHasher(h *Hasher) Option {
	return func(s *Service) { s.hasher = h }
}

// NewService returns a Service over users and tokens. now defaults to
// time.Now and logger to a discarding logger when nil.
func NewService(users UserStore, tokens *Tokens, now func() time.Time, logger *slog.Logger, opts ...Option) *Service {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{users: users, tokens: tokens, now: now, logger: logger}
	for _, o := range opts {
		o(s)
	}
	if s.hasher == nil {
		s.hasher = NewHasher(DefaultHashConcurrency(), DefaultHashWait)
	}
	return s
}

// Register creates a customer account and returns it with an access token.
// It returns a *ValidationError for a bad email or password,
// ErrEmailTaken when the email is registered, and ErrBusy when the password
// could not be hashed for want of room.
func (s *Service) Register(ctx context.Context, email, password string) (User, string, time.Time, error) {
	email = NormalizeEmail(email)
	if err := validateCredentials(email, password); err != nil {
		return User{}, "", time.Time{}, err
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return User{}, "", time.Time{}, fmt.Errorf("register: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return User{}, "", time.Time{}, fmt.Errorf("register: new id: %w", err)
	}
	u, err := s.users.UserCreate(ctx, User{
		ID:        id,
		Email:     email,
		Role:      RoleCustomer,
		CreatedAt: s.now().UTC(),
	}, hash)
	if err != nil {
		return User{}, "", time.Time{}, fmt.Errorf("register: %w", err)
	}
	token, exp, err := s.tokens.Issue(u)
	if err != nil {
		return User{}, "", time.Time{}, fmt.Errorf("register: %w", err)
	}
	return u, token, exp, nil
}

// Login checks an email and password and returns the user with an access
// token. Unknown email, wrong password and disabled account all return
// ErrInvalidCredentials, and take the same time; ErrBusy means the password
// could not be checked for want of room.
func (s *Service) Login(ctx context.Context, email, password string) (User, string, time.Time, error) {
	// No stored password can be this long, so nothing is learnt by
	// answering at once, and nobody gets to make us hash a huge input.
	if utf8.RuneCountInString(password) > MaxPasswordLength {
		return User{}, "", time.Time{}, ErrInvalidCredentials
	}
	email = NormalizeEmail(email)
	u, hash, err := s.users.UserByEmail(ctx, email)
	if errors.Is(err, ErrUserNotFound) {
		if dummy, derr := dummyHash(); derr == nil {
			if _, err := s.hasher.Check(ctx, dummy, password); err != nil {
				return User{}, "", time.Time{}, err // ErrBusy or ctx's, as a known email's would be
			}
		}
		return User{}, "", time.Time{}, ErrInvalidCredentials
	}
	if err != nil {
		return User{}, "", time.Time{}, fmt.Errorf("login: %w", err)
	}
	ok, err := s.hasher.Check(ctx, hash, password)
	if errors.Is(err, ErrMalformedHash) {
		return User{}, "", time.Time{}, fmt.Errorf("login: user %s: %w", u.ID, err)
	}
	if err != nil {
		return User{}, "", time.Time{}, err // ErrBusy, or the caller gave up
	}
	if !ok {
		return User{}, "", time.Time{}, ErrInvalidCredentials
	}
	// Checked after the password so a disabled account is indistinguishable
	// from a wrong password to someone who does not know it.
	if u.Disabled {
		s.logger.InfoContext(ctx, "login refused for disabled user", "user_id", u.ID)
		return User{}, "", time.Time{}, ErrInvalidCredentials
	}
	token, exp, err := s.tokens.Issue(u)
	if err != nil {
		return User{}, "", time.Time{}, fmt.Errorf("login: %w", err)
	}
	return u, token, exp, nil
}

// Authenticate verifies token and returns the caller it names. The user's
// standing is checked on every call, so a disabled or deleted account loses
// access as soon as the store knows, and the role is the stored one, not the
// one in the token.
// It returns an error wrapping ErrUnauthenticated for a bad token or a user
// that is gone or disabled.
func (s *Service) Authenticate(ctx context.Context, token string) (Caller, error) {
	id, _, err := s.tokens.Parse(token)
	if err != nil {
		return Caller{}, err
	}
	u, err := s.users.UserStanding(ctx, id)
	if errors.Is(err, ErrUserNotFound) {
		return Caller{}, fmt.Errorf("%w: user %s not found", ErrUnauthenticated, id)
	}
	if err != nil {
		return Caller{}, fmt.Errorf("authenticate: %w", err)
	}
	if u.Disabled {
		return Caller{}, fmt.Errorf("%w: user %s is disabled", ErrUnauthenticated, id)
	}
	return Caller{UserID: id, Role: u.Role}, nil
}

// EnsureAdmin makes email an enabled admin with password, creating the
// account if needed. Calling it again with the same input changes nothing
// but the password hash's salt. It returns a *ValidationError for a bad
// email or password.
func (s *Service) EnsureAdmin(ctx context.Context, email, password string) (User, error) {
	email = NormalizeEmail(email)
	if err := validateCredentials(email, password); err != nil {
		return User{}, err
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return User{}, fmt.Errorf("ensure admin: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return User{}, fmt.Errorf("ensure admin: new id: %w", err)
	}
	u, err := s.users.UserUpsertAdmin(ctx, id, email, hash)
	if err != nil {
		return User{}, fmt.Errorf("ensure admin: %w", err)
	}
	s.logger.InfoContext(ctx, "admin account ensured", "user_id", u.ID, "email", u.Email)
	return u, nil
}
