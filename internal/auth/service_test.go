package auth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// memUsers is an in-memory UserStore; the real one is tested in internal/postgres.
type memUsers struct {
	mu     sync.Mutex
	byID   map[uuid.UUID]User
	hashes map[uuid.UUID]string
	err    error // returned by every call when set
}

func newMemUsers() *memUsers {
	return &memUsers{byID: map[uuid.UUID]User{}, hashes: map[uuid.UUID]string{}}
}

func (m *memUsers) findEmail(email string) (User, bool) {
	for _, u := range m.byID {
		if u.Email == email {
			return u, true
		}
	}
	return User{}, false
}

func (m *memUsers) UserCreate(_ context.Context, u User, hash string) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return User{}, m.err
	}
	if _, ok := m.findEmail(u.Email); ok {
		return User{}, ErrEmailTaken
	}
	m.byID[u.ID] = u
	m.hashes[u.ID] = hash
	return u, nil
}

func (m *memUsers) UserByEmail(_ context.Context, email string) (User, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return User{}, "", m.err
	}
	u, ok := m.findEmail(email)
	if !ok {
		return User{}, "", ErrUserNotFound
	}
	return u, m.hashes[u.ID], nil
}

func (m *memUsers) UserStanding(_ context.Context, id uuid.UUID) (Standing, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return Standing{}, m.err
	}
	u, ok := m.byID[id]
	if !ok {
		return Standing{}, ErrUserNotFound
	}
	return Standing{Role: u.Role, Disabled: u.Disabled}, nil
}

func (m *memUsers) UserUpsertAdmin(_ context.Context, id uuid.UUID, email, hash string) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return User{}, m.err
	}
	u, ok := m.findEmail(email)
	if !ok {
		u = User{ID: id, Email: email}
	}
	u.Role, u.Disabled = RoleAdmin, false
	m.byID[u.ID] = u
	m.hashes[u.ID] = hash
	return u, nil
}

func (m *memUsers) set(u User) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.byID[u.ID] = u
}

func (m *memUsers) remove(id uuid.UUID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.byID, id)
}

func newTestService(t *testing.T) (*Service, *memUsers) {
	t.Helper()
	users := newMemUsers()
	now := func() time.Time { return testStart }
	return NewService(users, NewTokens(testSecret, testTTL, now), now, nil), users
}

func TestServiceRegisterLoginAuthenticate(t *testing.T) {
	ctx := context.Background()
	svc, _ := newTestService(t)

	u, tok, exp, err := svc.Register(ctx, "  Alice@Example.com ", "s3cret-password")
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	if u.Email != "alice@example.com" {
		t.Errorf("Register email = %q, want %q", u.Email, "alice@example.com")
	}
	if u.Role != RoleCustomer {
		t.Errorf("Register role = %q, want %q", u.Role, RoleCustomer)
	}
	if u.ID.Version() != 7 {
		t.Errorf("Register id version = %d, want 7", u.ID.Version())
	}
	if want := testStart.Add(testTTL); !exp.Equal(want) {
		t.Errorf("Register expiresAt = %v, want %v", exp, want)
	}
	caller, err := svc.Authenticate(ctx, tok)
	if err != nil {
		t.Fatalf("Authenticate(register token): %v", err)
	}
	if want := (Caller{UserID: u.ID, Role: RoleCustomer}); caller != want {
		t.Errorf("Authenticate = %+v, want %+v", caller, want)
	}

	lu, ltok, _, err := svc.Login(ctx, "ALICE@example.com", "s3cret-password")
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if lu.ID != u.ID {
		t.Errorf("Login id = %v, want %v", lu.ID, u.ID)
	}
	if _, err := svc.Authenticate(ctx, ltok); err != nil {
		t.Errorf("Authenticate(login token): %v", err)
	}
}

func TestServiceRegisterEmailTaken(t *testing.T) {
	ctx := context.Background()
	svc, _ := newTestService(t)
	if _, _, _, err := svc.Register(ctx, "bob@example.com", "password-1"); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := svc.Register(ctx, "BOB@example.com", "password-2")
	if !errors.Is(err, ErrEmailTaken) {
		t.Errorf("second Register error = %v, want ErrEmailTaken", err)
	}
}

func TestServiceRegisterValidation(t *testing.T) {
	tests := []struct {
		name     string
		email    string
		password string
		fields   []string // fields expected in violations, in order
	}{
		{"empty both", "", "", []string{"email", "password"}},
		{"bad email", "not-an-email", "long-enough", []string{"email"}},
		{"display name", "Bob <bob@example.com>", "long-enough", []string{"email"}},
		{"too long email", strings.Repeat("a", 250) + "@x.io", "long-enough", []string{"email"}},
		{"short password", "bob@example.com", "1234567", []string{"password"}},
		{"short in characters", "bob@example.com", "ééé", []string{"password"}},
		{"long password", "bob@example.com", strings.Repeat("p", MaxPasswordLength+1), []string{"password"}},
		{"min password ok", "bob@example.com", "12345678", nil},
		{"max password ok", "bob2@example.com", strings.Repeat("é", MaxPasswordLength), nil},
	}
	svc, _ := newTestService(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := svc.Register(context.Background(), tt.email, tt.password)
			if tt.fields == nil {
				if err != nil {
					t.Errorf("Register error = %v, want nil", err)
				}
				return
			}
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Register error = %v, want *ValidationError", err)
			}
			var got []string
			for _, v := range verr.Violations {
				got = append(got, v.Field)
				if v.Description == "" {
					t.Errorf("violation of %q has no description", v.Field)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.fields, ",") {
				t.Errorf("violated fields = %v, want %v", got, tt.fields)
			}
		})
	}
}

func TestServiceLoginRejects(t *testing.T) {
	ctx := context.Background()
	svc, users := newTestService(t)
	u, _, _, err := svc.Register(ctx, "carol@example.com", "right-password")
	if err != nil {
		t.Fatal(err)
	}
	d, _, _, err := svc.Register(ctx, "dave@example.com", "right-password")
	if err != nil {
		t.Fatal(err)
	}
	d.Disabled = true
	users.set(d)

	tests := []struct {
		name, email, password string
	}{
		{"wrong password", u.Email, "wrong-password"},
		{"unknown email", "nobody@example.com", "right-password"},
		{"empty", "", ""},
		{"too long password", u.Email, strings.Repeat("x", MaxPasswordLength+1)},
		{"disabled user, right password", d.Email, "right-password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, tok, _, err := svc.Login(ctx, tt.email, tt.password)
			if !errors.Is(err, ErrInvalidCredentials) {
				t.Errorf("Login error = %v, want ErrInvalidCredentials", err)
			}
			if got != (User{}) || tok != "" {
				t.Errorf("Login = (%+v, %q), want zero values", got, tok)
			}
		})
	}
}

func TestServiceLoginStoreError(t *testing.T) {
	svc, users := newTestService(t)
	boom := errors.New("connection refused")
	users.err = boom
	_, _, _, err := svc.Login(context.Background(), "x@example.com", "password")
	if !errors.Is(err, boom) || errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("Login error = %v, want the store error, not ErrInvalidCredentials", err)
	}
}

func TestServiceAuthenticate(t *testing.T) {
	ctx := context.Background()
	svc, users := newTestService(t)
	u, tok, _, err := svc.Register(ctx, "erin@example.com", "right-password")
	if err != nil {
		t.Fatal(err)
	}

	// The role comes from the database: promote, and the old token says admin.
	u.Role = RoleAdmin
	users.set(u)
	caller, err := svc.Authenticate(ctx, tok)
	if err != nil {
		t.Fatalf("Authenticate after promotion: %v", err)
	}
	if !caller.IsAdmin() {
		t.Errorf("Authenticate after promotion role = %q, want %q", caller.Role, RoleAdmin)
	}

	u.Disabled = true
	users.set(u)
	if _, err := svc.Authenticate(ctx, tok); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("Authenticate disabled user error = %v, want ErrUnauthenticated", err)
	}

	users.remove(u.ID)
	if _, err := svc.Authenticate(ctx, tok); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("Authenticate deleted user error = %v, want ErrUnauthenticated", err)
	}

	if _, err := svc.Authenticate(ctx, ""); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("Authenticate empty token error = %v, want ErrUnauthenticated", err)
	}
}

func TestServiceAuthenticateStoreError(t *testing.T) {
	ctx := context.Background()
	svc, users := newTestService(t)
	_, tok, _, err := svc.Register(ctx, "frank@example.com", "right-password")
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("connection refused")
	users.err = boom
	_, err = svc.Authenticate(ctx, tok)
	if !errors.Is(err, boom) || errors.Is(err, ErrUnauthenticated) {
		t.Errorf("Authenticate error = %v, want the store error, not ErrUnauthenticated", err)
	}
}

func TestServiceEnsureAdmin(t *testing.T) {
	ctx := context.Background()
	svc, users := newTestService(t)

	a, err := svc.EnsureAdmin(ctx, "Root@Example.com", "admin-password")
	if err != nil {
		t.Fatalf("EnsureAdmin: %v", err)
	}
	if a.Role != RoleAdmin || a.Email != "root@example.com" {
		t.Errorf("EnsureAdmin = %+v, want admin root@example.com", a)
	}

	// Idempotent, and it re-enables and re-keys an existing account.
	a.Disabled = true
	users.set(a)
	b, err := svc.EnsureAdmin(ctx, "root@example.com", "new-admin-password")
	if err != nil {
		t.Fatalf("second EnsureAdmin: %v", err)
	}
	if b.ID != a.ID || b.Role != RoleAdmin || b.Disabled {
		t.Errorf("second EnsureAdmin = %+v, want same id %v, enabled admin", b, a.ID)
	}
	if _, _, _, err := svc.Login(ctx, "root@example.com", "new-admin-password"); err != nil {
		t.Errorf("Login with new admin password: %v", err)
	}
	if _, _, _, err := svc.Login(ctx, "root@example.com", "admin-password"); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("Login with old admin password error = %v, want ErrInvalidCredentials", err)
	}

	var verr *ValidationError
	if _, err := svc.EnsureAdmin(ctx, "root@example.com", "short"); !errors.As(err, &verr) {
		t.Errorf("EnsureAdmin short password error = %v, want *ValidationError", err)
	}
}
