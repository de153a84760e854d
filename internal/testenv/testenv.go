// Package testenv is the one place tests decide what to do when a service
// or tool they need is missing: skip with the reason, except under CI=true,
// where a missing service is a failure, never a silent skip.
package testenv

import (
	"cmp"
	"os"
	"testing"
)

// CI reports whether the tests run in CI (CI=true).
func CI() bool { return os.Getenv("CI") == "true" }

// Missing ends the test for a missing service or tool: t.Skipf, or t.Fatalf
// under CI=true.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if CI() {
		t.Fatalf(format+" (CI=true, so not skipping)", args...)
	}
	t.Skipf(format, args...)
}

// RedisURL is the Redis tests use: TEST_REDIS_URL, else the local default.
// Tests share it, so each keeps to its own key prefix (or private server).
func RedisURL() string {
	return cmp.Or(os.Getenv("TEST_REDIS_URL"), "redis://127.0.0.1:6379/0")
}
