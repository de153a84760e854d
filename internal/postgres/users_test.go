package postgres_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/flashsale/flashsale/internal/auth"
)

func TestUserCreate(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	id := newID()

	u, err := s.UserCreate(ctx, auth.User{ID: id, Email: "Ann@Example.COM"}, "hash-1")
	if err != nil {
		t.Fatalf("UserCreate: %v", err)
	}
	want := auth.User{ID: id, Email: "ann@example.com", Role: auth.RoleCustomer, CreatedAt: u.CreatedAt}
	if u != want {
		t.Errorf("UserCreate = %+v, want %+v", u, want)
	}
	if u.CreatedAt.IsZero() {
		t.Errorf("UserCreate CreatedAt is zero")
	}

	got, hash, err := s.UserByEmail(ctx, "ANN@example.com")
	if err != nil {
		t.Fatalf("UserByEmail: %v", err)
	}
	if got != u || hash != "hash-1" {
		t.Errorf("UserByEmail = %+v, %q, want %+v, %q", got, hash, u, "hash-1")
	}

	st, err := s.UserStanding(ctx, id)
	if err != nil {
		t.Fatalf("UserStanding: %v", err)
	}
	if want := (auth.Standing{Role: auth.RoleCustomer}); st != want {
		t.Errorf("UserStanding = %+v, want %+v", st, want)
	}
}

func TestUserCreateKeepsRole(t *testing.T) {
	s := newStore(t)
	u, err := s.UserCreate(t.Context(), auth.User{ID: newID(), Email: "root@example.com", Role: auth.RoleAdmin, Disabled: true}, "h")
	if err != nil {
		t.Fatalf("UserCreate: %v", err)
	}
	if u.Role != auth.RoleAdmin || !u.Disabled {
		t.Errorf("UserCreate role, disabled = %q, %v, want %q, true", u.Role, u.Disabled, auth.RoleAdmin)
	}
}

func TestUserCreateEmailTaken(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	if _, err := s.UserCreate(ctx, auth.User{ID: newID(), Email: "bob@example.com"}, "h"); err != nil {
		t.Fatalf("UserCreate: %v", err)
	}
	_, err := s.UserCreate(ctx, auth.User{ID: newID(), Email: "Bob@Example.com"}, "h")
	if !errors.Is(err, auth.ErrEmailTaken) {
		t.Errorf("UserCreate with a taken email = %v, want %v", err, auth.ErrEmailTaken)
	}
}

func TestUserNotFound(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	if _, _, err := s.UserByEmail(ctx, "nobody@example.com"); !errors.Is(err, auth.ErrUserNotFound) {
		t.Errorf("UserByEmail = %v, want %v", err, auth.ErrUserNotFound)
	}
	if _, err := s.UserStanding(ctx, newID()); !errors.Is(err, auth.ErrUserNotFound) {
		t.Errorf("UserStanding = %v, want %v", err, auth.ErrUserNotFound)
	}
	if err := s.UserSetDisabled(ctx, newID(), true); !errors.Is(err, auth.ErrUserNotFound) {
		t.Errorf("UserSetDisabled = %v, want %v", err, auth.ErrUserNotFound)
	}
}

func TestUserSetDisabled(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	u := mustUser(t, s)
	for _, disabled := range []bool{true, false} {
		if err := s.UserSetDisabled(ctx, u.ID, disabled); err != nil {
			t.Fatalf("UserSetDisabled(%v): %v", disabled, err)
		}
		got, err := s.UserStanding(ctx, u.ID)
		if err != nil {
			t.Fatalf("UserStanding: %v", err)
		}
		if got.Disabled != disabled {
			t.Errorf("Disabled after UserSetDisabled(%v) = %v", disabled, got.Disabled)
		}
	}
}

func TestUserUpsertAdmin(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	id := newID()

	created, err := s.UserUpsertAdmin(ctx, id, "Admin@Example.com", "hash-1")
	if err != nil {
		t.Fatalf("UserUpsertAdmin (create): %v", err)
	}
	want := auth.User{ID: id, Email: "admin@example.com", Role: auth.RoleAdmin, CreatedAt: created.CreatedAt}
	if created != want {
		t.Errorf("UserUpsertAdmin (create) = %+v, want %+v", created, want)
	}

	again, err := s.UserUpsertAdmin(ctx, newID(), "admin@example.com", "hash-1")
	if err != nil {
		t.Fatalf("UserUpsertAdmin (again): %v", err)
	}
	if again != created {
		t.Errorf("UserUpsertAdmin (again) = %+v, want %+v", again, created)
	}
}

func TestUserUpsertAdminPromotes(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	customer, err := s.UserCreate(ctx, auth.User{ID: newID(), Email: "carol@example.com", Disabled: true}, "old")
	if err != nil {
		t.Fatalf("UserCreate: %v", err)
	}

	admin, err := s.UserUpsertAdmin(ctx, newID(), "carol@example.com", "new")
	if err != nil {
		t.Fatalf("UserUpsertAdmin: %v", err)
	}
	want := auth.User{ID: customer.ID, Email: customer.Email, Role: auth.RoleAdmin, CreatedAt: customer.CreatedAt}
	if admin != want {
		t.Errorf("UserUpsertAdmin = %+v, want %+v", admin, want)
	}
	if _, hash, err := s.UserByEmail(ctx, "carol@example.com"); err != nil || hash != "new" {
		t.Errorf("UserByEmail hash = %q, %v, want %q, nil", hash, err, "new")
	}
}

// TestUserStandingConcurrent: table lookups made at once share queries but
// each gets its own answer, the unknown ones auth.ErrUserNotFound.
func TestUserStandingConcurrent(t *testing.T) {
	s := newStore(t)
	known := make([]auth.User, 100)
	for i := range known {
		known[i] = mustUser(t, s)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(known))
	for _, u := range known {
		wg.Go(func() {
			<-start
			got, err := s.UserStanding(t.Context(), u.ID)
			if want := (auth.Standing{Role: u.Role, Disabled: u.Disabled}); err != nil || got != want {
				errs <- fmt.Errorf("UserStanding(%s) = %v, %v; want %v", u.ID, got, err, want)
			}
		})
		wg.Go(func() {
			<-start
			if _, err := s.UserStanding(t.Context(), newID()); !errors.Is(err, auth.ErrUserNotFound) {
				errs <- fmt.Errorf("UserStanding(unknown) error = %v, want ErrUserNotFound", err)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
