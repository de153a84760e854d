package testenv

import "testing"

// TestCI: CI=1 and the other spellings CI systems use turn skips into
// failures; only an unset, empty or false CI leaves them skips. CI=1 used
// to count as not CI, so a CI run without PostgreSQL passed by skipping.
func TestCI(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  bool
	}{
		{"", false},
		{" ", false},
		{"0", false},
		{"f", false},
		{"false", false},
		{"FALSE", false},
		{"False", false},
		{"no", false},
		{"No", false},
		{"n", false},
		{"off", false},
		{"1", true},
		{"t", true},
		{"T", true},
		{"true", true},
		{"TRUE", true},
		{"True", true},
		{" true ", true},
		{"yes", true},
		{"YES", true},
		{"y", true},
		{"on", true},
		{"woodpecker", true}, // a CI system's name: CI, never a silent skip
	} {
		t.Setenv("CI", tt.value)
		if got := CI(); got != tt.want {
			t.Errorf("CI=%q: CI() = %v, want %v", tt.value, got, tt.want)
		}
	}
}

// recorder is a testing.TB that notes how Missing ended the test (the
// first of Fatalf and Skipf called: a real one would not return).
type recorder struct {
	testing.TB
	ended string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(string, ...any) {
	if r.ended == "" {
		r.ended = "fatal"
	}
}
func (r *recorder) Skipf(string, ...any) {
	if r.ended == "" {
		r.ended = "skip"
	}
}

// TestMissing: a missing service fails the test under CI=1, and is a skip
// outside CI.
func TestMissing(t *testing.T) {
	for value, want := range map[string]string{"1": "fatal", "true": "fatal", "yes": "fatal", "": "skip", "0": "skip"} {
		t.Setenv("CI", value)
		r := &recorder{TB: t}
		Missing(r, "postgres not reachable")
		if r.ended != want {
			t.Errorf("CI=%q: Missing ended the test with %q, want %q", value, r.ended, want)
		}
	}
}
