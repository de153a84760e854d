package postgres_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/postgres"
	"github.com/flashsale/flashsale/internal/postgres/pgtest"
)

// followUsers starts s.FollowUsers for the test and waits until its
// directory is current.
func followUsers(t *testing.T, s *postgres.Store) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.FollowUsers(ctx, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, "the directory is current", func() bool { return postgres.DirectoryCurrent(s) })
}

// eventually polls cond for up to 10 s; the directory learns of changes
// asynchronously, a notification's trip after each commit.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func directoryHas(s *postgres.Store, id uuid.UUID, want auth.Standing) func() bool {
	return func() bool {
		got, ok := postgres.DirectoryLookup(s, id)
		return ok && got == want
	}
}

func directoryLacks(s *postgres.Store, id uuid.UUID) func() bool {
	return func() bool {
		_, ok := postgres.DirectoryLookup(s, id)
		return !ok && postgres.DirectoryCurrent(s)
	}
}

// TestUserDirectoryFollowsChanges: the directory starts from the table and
// then follows every kind of change made to it, by the store or by hand.
func TestUserDirectoryFollowsChanges(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := newStoreURL(t, url)
	ctx := t.Context()
	before := mustUser(t, s)
	if _, ok := postgres.DirectoryLookup(s, before.ID); ok {
		t.Fatal("a directory nobody follows answered")
	}
	if st := s.DirectoryStats(); st.Current {
		t.Errorf("DirectoryStats before following = %+v, want not current", st)
	}
	followUsers(t, s)
	eventually(t, "the directory is current, its lag measured", func() bool {
		st := s.DirectoryStats()
		return st.Current && st.Lag > 0 && st.Lag < 3*time.Second && st.Users == 1
	})
	customer := auth.Standing{Role: auth.RoleCustomer}
	if got, ok := postgres.DirectoryLookup(s, before.ID); !ok || got != customer {
		t.Fatalf("user created before following = %+v, %v; want %+v", got, ok, customer)
	}

	after := mustUser(t, s)
	eventually(t, "a new user appears", directoryHas(s, after.ID, customer))

	if err := s.UserSetDisabled(ctx, before.ID, true); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a disabled user shows disabled", directoryHas(s, before.ID, auth.Standing{Role: auth.RoleCustomer, Disabled: true}))
	if st, err := s.UserStanding(ctx, before.ID); err != nil || !st.Disabled {
		t.Errorf("UserStanding(disabled) = %+v, %v", st, err)
	}

	if _, err := s.UserUpsertAdmin(ctx, newID(), after.Email, "hash"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a promoted user shows admin", directoryHas(s, after.ID, auth.Standing{Role: auth.RoleAdmin}))

	db, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	if _, err := db.Exec(ctx, "DELETE FROM users WHERE id = $1", after.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a deleted user is gone", directoryLacks(s, after.ID))
	if _, err := s.UserStanding(ctx, after.ID); err != auth.ErrUserNotFound {
		t.Errorf("UserStanding(deleted) error = %v, want ErrUserNotFound", err)
	}

	if _, err := db.Exec(ctx, "TRUNCATE users CASCADE"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "truncated users are gone", directoryLacks(s, before.ID))
}

// TestUserDirectoryReconnects: when its listening connection is killed the
// directory comes back by itself, and what changed while it was away (the
// notification went to a dead connection) is in it.
func TestUserDirectoryReconnects(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := newStoreURL(t, url)
	ctx := t.Context()
	u := mustUser(t, s)
	followUsers(t, s)

	db, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	var killed int
	err = db.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%'`).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminating the listener: %d killed, %v", killed, err)
	}
	// Disabled while the directory is (probably) away, and told by hand
	// so that nothing of the store's is involved.
	if _, err := db.Exec(ctx, "UPDATE users SET disabled = true WHERE id = $1", u.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the directory is back with the change", directoryHas(s, u.ID, auth.Standing{Role: auth.RoleCustomer, Disabled: true}))
}

// TestFollowUsersJoinsHeartbeat: FollowUsers returns only once the
// heartbeat it started has ended, so nothing of the directory's still runs
// (and queries the pool) when the owner goes on to close the store. The
// heartbeat here is slow to end; a FollowUsers that did not wait for it
// returns first.
func TestFollowUsersJoinsHeartbeat(t *testing.T) {
	s := newStoreURL(t, pgtest.NewDatabase(t))
	var ended atomic.Bool
	postgres.OnHeartbeatDone(s, func() {
		time.Sleep(200 * time.Millisecond)
		ended.Store(true)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.FollowUsers(ctx, slog.New(slog.DiscardHandler))
	}()
	eventually(t, "the directory is current", func() bool { return postgres.DirectoryCurrent(s) })
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("FollowUsers still running 10s after its context ended")
	}
	if !ended.Load() {
		t.Error("FollowUsers returned while its heartbeat goroutine was still running")
	}
}
