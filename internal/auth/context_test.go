package auth

import (
	"context"
	"testing"

	"github.com/google/uuid"
)

func TestCallerContext(t *testing.T) {
	if _, ok := CallerFrom(context.Background()); ok {
		t.Errorf("CallerFrom(empty context) ok = true, want false")
	}
	want := Caller{UserID: uuid.New(), Role: RoleAdmin}
	got, ok := CallerFrom(WithCaller(context.Background(), want))
	if !ok {
		t.Fatalf("CallerFrom ok = false, want true")
	}
	if got != want {
		t.Errorf("CallerFrom = %+v, want %+v", got, want)
	}
}

func TestCallerIsAdmin(t *testing.T) {
	tests := []struct {
		role Role
		want bool
	}{
		{RoleAdmin, true},
		{RoleCustomer, false},
		{"", false},
		{"Admin", false},
	}
	for _, tt := range tests {
		if got := (Caller{Role: tt.role}).IsAdmin(); got != tt.want {
			t.Errorf("Caller{Role: %q}.IsAdmin() = %v, want %v", tt.role, got, tt.want)
		}
	}
}
