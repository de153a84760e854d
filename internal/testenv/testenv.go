// Package testenv is the one place tests decide what to do when a service
// or tool they need is missing: skip with the reason, except under CI,
// where a missing service is a failure, never a silent skip.
package testenv

import (
	"cmp"
	"os"
	"strconv"
	"strings"
	"testing"
)

// CI reports whether the tests run in CI: the CI variable is set to
// anything but a false value. True values are strconv.ParseBool's (1, t,
// true, in any case) and also yes, y and on; false ones are ParseBool's (0,
// f, false) and no, n and off. CI systems spell it differently (CI=true,
// CI=1, CI=yes, or the system's name), and a CI run that skipped its
// database tests because it spelt it otherwise would pass without testing,
// so a value that is neither counts as CI too.
func CI() bool { return isCI(os.Getenv("CI")) }

func isCI(v string) bool {
	v = strings.TrimSpace(v)
	if v == "" {
		return false
	}
	if b, err := strconv.ParseBool(v); err == nil {
		return b
	}
	switch strings.ToLower(v) {
	case "no", "n", "off":
		return false
	}
	return true
}

// Missing ends the test for a missing service or tool: t.Skipf, or t.Fatalf
// under CI.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if CI() {
		t.Fatalf(format+" (CI=%s, so not skipping)", append(args, os.Getenv("CI"))...)
	}
	t.Skipf(format, args...)
}

// RedisURL is the Redis tests use: TEST_REDIS_URL, else the local default.
// Tests share it, so each keeps to its own key prefix (or private server).
func RedisURL() string {
	return cmp.Or(os.Getenv("TEST_REDIS_URL"), "redis://127.0.0.1:6379/0")
}

// Long marks a test that runs real processes or servers for a while: with
// -short it is skipped, saying what it does, except under CI, where every
// test runs.
func Long(t testing.TB, what string) {
	t.Helper()
	if testing.Short() && !CI() {
		t.Skip(what + "; skipped with -short (never under CI=true)")
	}
}
