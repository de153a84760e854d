package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

var (
	testSecret   = []byte("0123456789abcdef0123456789abcdef")
	testStart    = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	testTTL      = time.Hour
	testUserID   = uuid.MustParse("01890a5d-ac96-774b-bcce-b302099a8057")
	testCustomer = User{ID: testUserID, Email: "alice@example.com", Role: RoleCustomer}
)

// clock is a settable time source for injecting into Tokens.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestTokensIssueParse(t *testing.T) {
	c := &clock{t: testStart}
	tokens := NewTokens(testSecret, testTTL, c.now)
	for _, u := range []User{testCustomer, {ID: uuid.New(), Role: RoleAdmin}} {
		tok, exp, err := tokens.Issue(u)
		if err != nil {
			t.Fatalf("Issue: %v", err)
		}
		if want := testStart.Add(testTTL); !exp.Equal(want) {
			t.Errorf("expiresAt = %v, want %v", exp, want)
		}
		id, role, err := tokens.Parse(tok)
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		if id != u.ID {
			t.Errorf("Parse id = %v, want %v", id, u.ID)
		}
		if role != u.Role {
			t.Errorf("Parse role = %q, want %q", role, u.Role)
		}
	}
}

func TestTokensExpiry(t *testing.T) {
	c := &clock{t: testStart}
	tokens := NewTokens(testSecret, testTTL, c.now)
	tok, _, err := tokens.Issue(testCustomer)
	if err != nil {
		t.Fatal(err)
	}

	// Expiry is exp plus TokenLeeway, for clocks that disagree a little.
	c.t = testStart.Add(testTTL + TokenLeeway - time.Second)
	if _, _, err := tokens.Parse(tok); err != nil {
		t.Errorf("Parse one second before expiry: %v, want nil", err)
	}

	c.t = testStart.Add(testTTL + TokenLeeway)
	_, _, err = tokens.Parse(tok)
	if !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("Parse at expiry error = %v, want ErrUnauthenticated", err)
	}
	if !errors.Is(err, jwt.ErrTokenExpired) {
		t.Errorf("Parse at expiry error = %v, want it to wrap jwt.ErrTokenExpired", err)
	}
}

// sign builds a token by hand with the given method, key and claims.
func sign(t *testing.T, m jwt.SigningMethod, key any, claims jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return s
}

// goodClaims are claims Tokens would issue at testStart; tests spoil one field.
func goodClaims() tokenClaims {
	return tokenClaims{
		Role:      RoleCustomer,
		Issuer:    tokenIssuer,
		Subject:   testUserID.String(),
		Audience:  jwt.ClaimStrings{tokenAudience},
		IssuedAt:  testStart.Unix(),
		ExpiresAt: testStart.Add(testTTL).Unix(),
	}
}

func TestTokensParseRejects(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: testStart.Add(time.Minute)}
	tokens := NewTokens(testSecret, testTTL, c.now)
	valid, _, err := NewTokens(testSecret, testTTL, func() time.Time { return testStart }).Issue(testCustomer)
	if err != nil {
		t.Fatal(err)
	}

	with := func(f func(*tokenClaims)) tokenClaims {
		c := goodClaims()
		f(&c)
		return c
	}

	tests := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"garbage", "not.a.token"},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, goodClaims())},
		{"alg none, HS256 signature kept", noneHeader(t, valid)},
		{"tampered payload", tamper(t, valid, func(m map[string]any) { m["role"] = "admin" })},
		{"tampered subject", tamper(t, valid, func(m map[string]any) { m["sub"] = uuid.NewString() })},
		{"wrong secret", sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), goodClaims())},
		{"HS512 with right secret", sign(t, jwt.SigningMethodHS512, testSecret, goodClaims())},
		{"HS384 with right secret", sign(t, jwt.SigningMethodHS384, testSecret, goodClaims())},
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey, goodClaims())},
		{"wrong issuer", sign(t, jwt.SigningMethodHS256, testSecret, with(func(c *tokenClaims) { c.Issuer = "someone-else" }))},
		{"no issuer", sign(t, jwt.SigningMethodHS256, testSecret, with(func(c *tokenClaims) { c.Issuer = "" }))},
		{"wrong audience", sign(t, jwt.SigningMethodHS256, testSecret, with(func(c *tokenClaims) { c.Audience = jwt.ClaimStrings{"other-api"} }))},
		{"no audience", sign(t, jwt.SigningMethodHS256, testSecret, with(func(c *tokenClaims) { c.Audience = nil }))},
		{"no expiry", sign(t, jwt.SigningMethodHS256, testSecret, with(func(c *tokenClaims) { c.ExpiresAt = 0 }))},
		{"expired", sign(t, jwt.SigningMethodHS256, testSecret, with(func(c *tokenClaims) { c.ExpiresAt = testStart.Unix() }))},
		{"issued in the future", sign(t, jwt.SigningMethodHS256, testSecret, with(func(c *tokenClaims) { c.IssuedAt = testStart.Add(time.Hour).Unix() }))},
		{"subject not a uuid", sign(t, jwt.SigningMethodHS256, testSecret, with(func(c *tokenClaims) { c.Subject = "alice" }))},
		{"nil subject", sign(t, jwt.SigningMethodHS256, testSecret, with(func(c *tokenClaims) { c.Subject = uuid.Nil.String() }))},
		{"unknown role", sign(t, jwt.SigningMethodHS256, testSecret, with(func(c *tokenClaims) { c.Role = "root" }))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, role, err := tokens.Parse(tt.token)
			if !errors.Is(err, ErrUnauthenticated) {
				t.Errorf("Parse error = %v, want ErrUnauthenticated", err)
			}
			if id != uuid.Nil || role != "" {
				t.Errorf("Parse = (%v, %q), want zero values on error", id, role)
			}
		})
	}

	// The controls: the untouched token, and the hand-built claims every
	// case above spoils, are accepted by the same Tokens.
	if _, _, err := tokens.Parse(valid); err != nil {
		t.Errorf("Parse(valid) = %v, want nil", err)
	}
	if _, _, err := tokens.Parse(sign(t, jwt.SigningMethodHS256, testSecret, goodClaims())); err != nil {
		t.Errorf("Parse(goodClaims) = %v, want nil", err)
	}
}

func TestTokensIssueRefusesEmptySecret(t *testing.T) {
	if _, _, err := NewTokens(nil, testTTL, nil).Issue(testCustomer); err == nil {
		t.Errorf("Issue with empty secret: err = nil, want an error")
	}
	if _, _, err := NewTokens(nil, testTTL, nil).Parse("x.y.z"); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("Parse with empty secret: err = %v, want ErrUnauthenticated", err)
	}
}

// tamper rewrites the payload of a signed token, keeping its signature.
func tamper(t *testing.T, token string, f func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	raw, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

// noneHeader swaps a token's header for {"alg":"none"}, keeping the rest.
func noneHeader(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	parts[0] = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	return strings.Join(parts, ".")
}

// TestTokensParseRemembers: a token seen before is answered from the
// verified memo, which keys on the token's exact text (a token one byte off
// is verified afresh, and refused) and still checks the expiry.
func TestTokensParseRemembers(t *testing.T) {
	c := &clock{t: testStart}
	tokens := NewTokens(testSecret, testTTL, c.now)
	tok, _, err := tokens.Issue(testCustomer)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		id, role, err := tokens.Parse(tok)
		if err != nil || id != testCustomer.ID || role != RoleCustomer {
			t.Fatalf("Parse #%d = %v, %q, %v", i+1, id, role, err)
		}
	}
	if n := len(tokens.verified); n != 1 {
		t.Fatalf("verified memo holds %d tokens, want 1", n)
	}
	last := tok[len(tok)-2]
	tampered := tok[:len(tok)-2] + string(last^1) + tok[len(tok)-1:]
	if _, _, err := tokens.Parse(tampered); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("Parse(tampered) after the good one = %v, want ErrUnauthenticated", err)
	}
	c.t = testStart.Add(testTTL + TokenLeeway - time.Second)
	if _, _, err := tokens.Parse(tok); err != nil {
		t.Errorf("Parse(remembered) a second before expiry = %v, want nil", err)
	}
	c.t = testStart.Add(testTTL + TokenLeeway)
	if _, _, err := tokens.Parse(tok); !errors.Is(err, jwt.ErrTokenExpired) {
		t.Errorf("Parse(remembered) at expiry = %v, want ErrTokenExpired", err)
	}
}

// TestTokensNotBeforeAndIssuedAt: nbf is honoured and iat checked, each
// with TokenLeeway for clocks that disagree a little (another process, or
// the client's issuer): a token not valid for an hour is refused, one a few
// seconds early is accepted.
func TestTokensNotBeforeAndIssuedAt(t *testing.T) {
	c := &clock{t: testStart}
	tokens := NewTokens(testSecret, testTTL, c.now)
	claims := func(nbf, iat time.Time) jwt.MapClaims {
		m := jwt.MapClaims{
			"iss":  tokenIssuer,
			"sub":  testUserID.String(),
			"aud":  []string{tokenAudience},
			"iat":  iat.Unix(),
			"exp":  testStart.Add(testTTL).Unix(),
			"role": string(RoleCustomer),
		}
		if !nbf.IsZero() {
			m["nbf"] = nbf.Unix()
		}
		return m
	}
	skew := TokenLeeway - time.Second
	tests := []struct {
		name     string
		nbf, iat time.Time
		ok       bool
	}{
		{"nbf an hour ahead", testStart.Add(time.Hour), testStart, false},
		{"nbf just past the leeway", testStart.Add(TokenLeeway + time.Second), testStart, false},
		{"nbf within the leeway", testStart.Add(skew), testStart, true},
		{"nbf passed", testStart.Add(-time.Minute), testStart, true},
		{"iat an hour ahead", time.Time{}, testStart.Add(time.Hour), false},
		{"iat within the leeway", time.Time{}, testStart.Add(skew), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tokens.Parse(sign(t, jwt.SigningMethodHS256, testSecret, claims(tt.nbf, tt.iat)))
			if tt.ok && err != nil {
				t.Errorf("Parse = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, ErrUnauthenticated) {
				t.Errorf("Parse = %v, want ErrUnauthenticated", err)
			}
		})
	}
}
