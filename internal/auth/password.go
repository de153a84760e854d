package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Password length limits, counted in characters. The upper bound keeps a
// request from making the server hash megabytes of input.
const (
	MinPasswordLength = 8
	MaxPasswordLength = 128
)

// maxEmailLength is the longest address SMTP can carry (RFC 5321 path limit).
const maxEmailLength = 254

// argon2id parameters recommended by OWASP (Password Storage Cheat Sheet):
// 19 MiB of memory, two passes, one lane. Every hash allocates the 19 MiB
// afresh, so the number running at once is bounded (Hasher).
const (
	argonMemory  uint32 = 19456 // KiB
	argonTime    uint32 = 2
	argonThreads uint8  = 1
	argonSaltLen        = 16
	argonKeyLen         = 32
)

// Bounds on parameters read back from a stored hash, so that a corrupt or
// hostile row cannot make one login allocate gigabytes or spin for minutes.
const (
	maxArgonMemory  = 1 << 20 // KiB, 1 GiB
	maxArgonTime    = 16
	minArgonKeyLen  = 16
	maxArgonKeyLen  = 64
	minArgonSaltLen = 8
)

// ErrMalformedHash is returned by CheckPassword when the stored hash is not
// an argon2id PHC string this package can verify.
var ErrMalformedHash = errors.New("malformed password hash")

// b64 is the PHC string encoding: standard alphabet, no padding.
var b64 = base64.RawStdEncoding

// HashPassword hashes pw with argon2id and a fresh random salt, returning a
// PHC string such as $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func HashPassword(pw string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("read salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// CheckPassword reports whether pw matches hash, using the parameters stored
// in the hash and a constant-time comparison. It returns ErrMalformedHash
// (wrapped) when hash cannot be parsed.
func CheckPassword(hash, pw string) (bool, error) {
	p, err := parseHash(hash)
	if err != nil {
		return false, err
	}
	return p.matches(pw), nil
}

// matches reports whether pw hashes to h's key with h's parameters.
func (h argonHash) matches(pw string) bool {
	key := argon2.IDKey([]byte(pw), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1
}

type argonHash struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

func parseHash(s string) (argonHash, error) {
	var h argonHash
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return h, fmt.Errorf("%w: not an argon2id PHC string", ErrMalformedHash)
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || parts[2] != fmt.Sprintf("v=%d", version) {
		return h, fmt.Errorf("%w: bad version field", ErrMalformedHash)
	}
	if version != argon2.Version {
		return h, fmt.Errorf("%w: unsupported version %d", ErrMalformedHash, version)
	}
	var memory, time, threads uint32
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &memory, &time, &threads); err != nil ||
		parts[3] != fmt.Sprintf("m=%d,t=%d,p=%d", memory, time, threads) {
		return h, fmt.Errorf("%w: bad parameter field", ErrMalformedHash)
	}
	if memory == 0 || memory > maxArgonMemory || time == 0 || time > maxArgonTime || threads == 0 || threads > 255 {
		return h, fmt.Errorf("%w: parameters out of range", ErrMalformedHash)
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < minArgonSaltLen {
		return h, fmt.Errorf("%w: bad salt", ErrMalformedHash)
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < minArgonKeyLen || len(key) > maxArgonKeyLen {
		return h, fmt.Errorf("%w: bad key", ErrMalformedHash)
	}
	return argonHash{memory: memory, time: time, threads: uint8(threads), salt: salt, key: key}, nil
}

// NormalizeEmail returns s trimmed of surrounding space and lower-cased, the
// form in which emails are stored and looked up.
func NormalizeEmail(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// ValidateEmail reports whether s is a bare address (no display name, no
// angle brackets or comments) of at most 254 bytes.
func ValidateEmail(s string) error {
	if s == "" {
		return errors.New("email is required")
	}
	if len(s) > maxEmailLength {
		return fmt.Errorf("email must be at most %d characters", maxEmailLength)
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		return errors.New("email must be a plain address such as name@example.com")
	}
	return nil
}
