package auth

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Token issuer and audience; a token minted for anything else is rejected.
const (
	tokenIssuer   = "flashsale"
	tokenAudience = "flashsale-api"
)

// TokenLeeway is how far apart the issuer's clock and ours may be: a token
// is accepted from TokenLeeway before its nbf (or iat) to TokenLeeway after
// its exp. Several serve processes issue and check each other's tokens, and
// their clocks are never exactly equal.
const TokenLeeway = 30 * time.Second

// Tokens issues and verifies HS256-signed JWT access tokens.
type Tokens struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time
	parser *jwt.Parser

	// verified remembers the tokens that passed verification, by the
	// SHA-256 of their exact text, so a client's next call with the same
	// token skips the base64 and JSON decoding (most of a verification's
	// cost); only the expiry is checked again. At most maxVerified are
	// kept; when full it starts over.
	mu       sync.RWMutex
	verified map[[sha256.Size]byte]verifiedToken
}

// maxVerified bounds Tokens.verified: about 6 MB at most.
const maxVerified = 1 << 16

type verifiedToken struct {
	userID    uuid.UUID
	role      Role
	expiresAt int64 // Unix seconds
}

// NewTokens returns Tokens signing with secret, issuing tokens valid for ttl
// as measured by now (time.Now when nil). The secret is copied.
func NewTokens(secret []byte, ttl time.Duration, now func() time.Time) *Tokens {
	if now == nil {
		now = time.Now
	}
	return &Tokens{
		secret:   append([]byte(nil), secret...),
		ttl:      ttl,
		now:      now,
		verified: make(map[[sha256.Size]byte]verifiedToken),
		// The allow-list of one method is what stops alg=none and
		// RS256-with-the-HMAC-secret-as-public-key confusion.
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithIssuer(tokenIssuer),
			jwt.WithAudience(tokenAudience),
			jwt.WithExpirationRequired(),
			// nbf is always checked when present; iat only with this.
			jwt.WithIssuedAt(),
			jwt.WithLeeway(TokenLeeway),
			jwt.WithTimeFunc(now),
		),
	}
}

// tokenClaims are the claims flashsale signs. Times are whole seconds in
// plain integers: decoding them as jwt.NumericDate was a fifth of the server's
// CPU per call under load, and this issuer never writes fractions.
type tokenClaims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  jwt.ClaimStrings `json:"aud"`
	IssuedAt  int64            `json:"iat"`
	NotBefore int64            `json:"nbf,omitempty"` // flashsale issues none; honoured if present
	ExpiresAt int64            `json:"exp"`
	ID        string           `json:"jti"`
	Role      Role             `json:"role"`
}

var _ jwt.Claims = tokenClaims{}

func numericDate(sec int64) *jwt.NumericDate {
	if sec == 0 {
		return nil
	}
	return jwt.NewNumericDate(time.Unix(sec, 0))
}

// GetExpirationTime implements jwt.Claims.
func (c tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return numericDate(c.ExpiresAt), nil
}

// GetIssuedAt implements jwt.Claims.
func (c tokenClaims) GetIssuedAt() (*jwt.NumericDate, error) { return numericDate(c.IssuedAt), nil }

// GetNotBefore implements jwt.Claims. flashsale issues no nbf, but a token
// that carries one (signed with our secret by some other tool) must not be
// used before it.
func (c tokenClaims) GetNotBefore() (*jwt.NumericDate, error) { return numericDate(c.NotBefore), nil }

// GetIssuer implements jwt.Claims.
func (c tokenClaims) GetIssuer() (string, error) { return c.Issuer, nil }

// GetSubject implements jwt.Claims.
func (c tokenClaims) GetSubject() (string, error) { return c.Subject, nil }

// GetAudience implements jwt.Claims.
func (c tokenClaims) GetAudience() (jwt.ClaimStrings, error) { return c.Audience, nil }

// Issue returns a signed token for u and the time it expires. The expiry
// is truncated to whole seconds, as it is in the token.
func (t *Tokens) Issue(u User) (token string, expiresAt time.Time, err error) {
	if len(t.secret) == 0 {
		return "", time.Time{}, errors.New("issue token: empty signing secret")
	}
	if t.ttl <= 0 {
		return "", time.Time{}, errors.New("issue token: non-positive lifetime")
	}
	now := t.now()
	expires := now.Add(t.ttl).Truncate(time.Second)
	c := tokenClaims{
		Issuer:    tokenIssuer,
		Subject:   u.ID.String(),
		Audience:  jwt.ClaimStrings{tokenAudience},
		IssuedAt:  now.Unix(),
		ExpiresAt: expires.Unix(),
		ID:        uuid.NewString(),
		Role:      u.Role,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return s, expires, nil
}

// Parse verifies token and returns the user id and role it names. Any
// failure (bad signature or algorithm, expired, wrong issuer or audience,
// malformed claims) returns an error wrapping ErrUnauthenticated.
func (t *Tokens) Parse(token string) (userID uuid.UUID, role Role, err error) {
	if len(t.secret) == 0 {
		return uuid.Nil, "", fmt.Errorf("%w: empty signing secret", ErrUnauthenticated)
	}
	sum := sha256.Sum256([]byte(token))
	t.mu.RLock()
	v, ok := t.verified[sum]
	t.mu.RUnlock()
	if ok {
		// Expired exactly when the parser would say so: at exp plus the
		// leeway, not after. (nbf and iat were checked when it was stored;
		// they only move further into the past.)
		if t.now().Unix() >= v.expiresAt+int64(TokenLeeway/time.Second) {
			return uuid.Nil, "", fmt.Errorf("%w: %w", ErrUnauthenticated, jwt.ErrTokenExpired)
		}
		return v.userID, v.role, nil
	}
	var c tokenClaims
	_, err = t.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) {
		return t.secret, nil
	})
	if err != nil {
		return uuid.Nil, "", fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	id, err := uuid.Parse(c.Subject)
	if err != nil || id == uuid.Nil {
		return uuid.Nil, "", fmt.Errorf("%w: bad subject", ErrUnauthenticated)
	}
	if c.Role != RoleCustomer && c.Role != RoleAdmin {
		return uuid.Nil, "", fmt.Errorf("%w: unknown role %q", ErrUnauthenticated, c.Role)
	}
	t.mu.Lock()
	if len(t.verified) >= maxVerified {
		clear(t.verified)
	}
	t.verified[sum] = verifiedToken{userID: id, role: c.Role, expiresAt: c.ExpiresAt}
	t.mu.Unlock()
	return id, c.Role, nil
}
