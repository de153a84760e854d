package grpcapi

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/flashsale/flashsale/internal/testenv"
)

// TestGRPCLog: what grpc-go and the gateway log through grpclog is held to
// the budget at warn (a response the gateway could not write, once per
// request of a client gone away, is one such line), with the suppressed
// lines counted; info lines show only at debug.
func TestGRPCLog(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var out testenv.Buffer
		g := GRPCLog(slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: level})), 5)
		for range 1000 {
			g.Errorf("Failed to write response: %v", "broken pipe")
		}
		g.Infof("channel %d: connectivity state changed", 1)
		var warnings, debugs int
		for _, line := range out.Lines() {
			var r struct{ Level, Msg string }
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			switch {
			case r.Level == "WARN" && strings.HasPrefix(r.Msg, "Failed to write response"):
				warnings++
			case r.Level == "DEBUG":
				debugs++
			}
		}
		// 5 a second; the loop may straddle a second boundary.
		if warnings < 1 || warnings > 10 {
			t.Errorf("level %v: %d warnings written of 1000, want the budget's 5 (10 across a second)", level, warnings)
		}
		if want := map[slog.Level]int{slog.LevelInfo: 0, slog.LevelDebug: 1}[level]; debugs != want {
			t.Errorf("level %v: %d debug lines, want %d (grpclog's info line at debug only)", level, debugs, want)
		}
		if g.V(1) {
			t.Error("V(1) is on")
		}
		if got := g.V(0); got != (level == slog.LevelDebug) {
			t.Errorf("level %v: V(0) = %v", level, got)
		}
	}
}
