package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// TestHelpNeedsNoConfig: asking for usage must work on a machine with no
// configuration at all, where config.Load would fail.
func TestHelpNeedsNoConfig(t *testing.T) {
	t.Setenv("AUTH_JWT_SECRET", "")
	t.Setenv("FLASHSALE_DEV", "not-a-bool") // config.Load would refuse this
	for _, args := range [][]string{
		{"help"}, {"-h"}, {"--help"}, {"serve", "-h"}, {"worker", "--help"}, {"reconcile", "-help"},
	} {
		var out bytes.Buffer
		if err := run(context.Background(), args, &out); err != nil {
			t.Errorf("run(%q) = %v, want nil", args, err)
		}
		if !strings.HasPrefix(out.String(), "usage: flashsale") {
			t.Errorf("run(%q) printed %q, want the usage", args, out.String())
		}
	}
	for _, args := range [][]string{{}, {"bogus"}} {
		if err := run(context.Background(), args, &bytes.Buffer{}); !errors.Is(err, errUsage) {
			t.Errorf("run(%q) = %v, want errUsage", args, err)
		}
	}
}
