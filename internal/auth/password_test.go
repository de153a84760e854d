package auth

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

func TestHashPasswordRoundTrip(t *testing.T) {
	hash, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	if want := "$argon2id$v=19$m=19456,t=2,p=1$"; !strings.HasPrefix(hash, want) {
		t.Errorf("hash = %q, want prefix %q", hash, want)
	}
	ok, err := CheckPassword(hash, "correct horse battery staple")
	if err != nil {
		t.Fatalf("CheckPassword: %v", err)
	}
	if !ok {
		t.Errorf("CheckPassword(right password) = false, want true")
	}
	ok, err = CheckPassword(hash, "correct horse battery stapler")
	if err != nil {
		t.Fatalf("CheckPassword: %v", err)
	}
	if ok {
		t.Errorf("CheckPassword(wrong password) = true, want false")
	}
}

func TestHashPasswordSalted(t *testing.T) {
	a, err := HashPassword("same password")
	if err != nil {
		t.Fatal(err)
	}
	b, err := HashPassword("same password")
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Errorf("two hashes of one password are equal (%q); want distinct salts", a)
	}
}

// TestCheckPasswordReadsParameters checks that the parameters come from the
// hash, not from the current defaults: this hash uses m=64,t=1,p=1.
func TestCheckPasswordReadsParameters(t *testing.T) {
	salt := []byte("somesaltsomesalt")
	key := argon2.IDKey([]byte("password"), salt, 1, 64, 1, 32)
	hash := "$argon2id$v=19$m=64,t=1,p=1$" + b64.EncodeToString(salt) + "$" + b64.EncodeToString(key)
	ok, err := CheckPassword(hash, "password")
	if err != nil {
		t.Fatalf("CheckPassword: %v", err)
	}
	if !ok {
		t.Errorf("CheckPassword with m=64,t=1 hash = false, want true")
	}
}

func TestCheckPasswordMalformed(t *testing.T) {
	const salt = "c29tZXNhbHRzb21lc2FsdA"                     // 16 bytes
	const key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" // 32 bytes
	tests := []struct {
		name string
		hash string
	}{
		{"empty", ""},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", "$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key},
		{"missing version", "$argon2id$m=19456,t=2,p=1$" + salt + "$" + key},
		{"wrong version", "$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + key},
		{"junk after version", "$argon2id$v=19x$m=19456,t=2,p=1$" + salt + "$" + key},
		{"params reordered", "$argon2id$v=19$t=2,m=19456,p=1$" + salt + "$" + key},
		{"zero memory", "$argon2id$v=19$m=0,t=2,p=1$" + salt + "$" + key},
		{"zero time", "$argon2id$v=19$m=19456,t=0,p=1$" + salt + "$" + key},
		{"zero threads", "$argon2id$v=19$m=19456,t=2,p=0$" + salt + "$" + key},
		{"huge memory", "$argon2id$v=19$m=4194304,t=2,p=1$" + salt + "$" + key},
		{"huge time", "$argon2id$v=19$m=19456,t=1000,p=1$" + salt + "$" + key},
		{"bad salt base64", "$argon2id$v=19$m=19456,t=2,p=1$!!!$" + key},
		{"short salt", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$" + key},
		{"bad key base64", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$!!!"},
		{"short key", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$AAAA"},
		{"extra field", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key + "$x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := CheckPassword(tt.hash, "password")
			if !errors.Is(err, ErrMalformedHash) {
				t.Errorf("CheckPassword(%q) error = %v, want ErrMalformedHash", tt.hash, err)
			}
			if ok {
				t.Errorf("CheckPassword(%q) = true, want false", tt.hash)
			}
		})
	}
}

func TestNormalizeEmail(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice@example.com", "alice@example.com"},
		{"  Alice@Example.COM\t", "alice@example.com"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := NormalizeEmail(tt.in); got != tt.want {
			t.Errorf("NormalizeEmail(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestValidateEmail(t *testing.T) {
	tests := []struct {
		email string
		ok    bool
	}{
		{"alice@example.com", true},
		{"a.b+tag@sub.example.co.uk", true},
		{"", false},
		{"alice", false},
		{"alice@", false},
		{"@example.com", false},
		{"Alice <alice@example.com>", false},
		{"<alice@example.com>", false},
		{"alice@example.com (comment)", false},
		{"alice@example.com, bob@example.com", false},
		{strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".com", true},  // 254
		{strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com", false}, // 255
	}
	for _, tt := range tests {
		err := ValidateEmail(tt.email)
		if got := err == nil; got != tt.ok {
			t.Errorf("ValidateEmail(%q) = %v, want ok=%v", tt.email, err, tt.ok)
		}
	}
}
