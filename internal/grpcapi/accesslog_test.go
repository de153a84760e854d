package grpcapi

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAccessLogFollowsLevel: at info every finished call is logged; at
// error the access log is not installed and the same call writes nothing.
func TestAccessLogFollowsLevel(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  bool
	}{{slog.LevelInfo, true}, {slog.LevelError, false}} {
		t.Run(tc.level.String(), func(t *testing.T) {
			var out syncBuffer
			s := NewServer(Deps{
				Log:     slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: tc.level})),
				Metrics: prometheus.NewRegistry(),
			})
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = s.Serve(lis) }()
			defer s.Stop()
			conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
				t.Fatal(err)
			}
			s.Stop() // the log line is written once the call has finished on the server
			got := strings.Contains(out.String(), "finished call")
			if got != tc.want {
				t.Errorf("access log line written = %v, want %v; log:\n%s", got, tc.want, out.String())
			}
		})
	}
}
