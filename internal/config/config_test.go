package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const secret = "0123456789abcdef0123456789abcdef" // 32 bytes

// with returns a valid environment (just a secret) plus kv pairs.
func with(kv ...string) map[string]string {
	m := map[string]string{"AUTH_JWT_SECRET": secret}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestLoadFromDefaults(t *testing.T) {
	got, err := LoadFrom(with())
	if err != nil {
		t.Fatalf("LoadFrom: %v", err)
	}
	want := Config{
		DatabaseURL:                   "postgres://postgres@127.0.0.1:5432/flashsale?sslmode=disable",
		RedisURL:                      "redis://127.0.0.1:6379/0",
		RedisKeyPrefix:                "fs",
		HTTPAddr:                      ":8080",
		GRPCAddr:                      ":9090",
		LogLevel:                      "info",
		LogAccessPerSecond:            20,
		JWTSecret:                     secret,
		TokenTTLSeconds:               3600,
		AuthHashWaitMS:                1000,
		OrdersBatchSize:               200,
		OrdersBatchWaitMS:             2,
		OrdersQueueMaxQueued:          100000,
		OrdersQueueRetryAfterSeconds:  2,
		OrdersWorkerConcurrency:       1,
		OrdersClaimIdleSeconds:        15,
		OrdersQueueMinReplicasSetting: "auto",
		OrdersQueueReplicaTimeoutMS:   250,
		RLGlobalCapacity:              5000,
		RLGlobalRefill:                2000,
		RLIPCapacity:                  200,
		RLIPRefill:                    50,
		RLIPSyncMS:                    200,
		RLUserOrderCapacity:           5,
		RLUserOrderRefill:             1,
		RLAuthIPCapacity:              20,
		RLAuthIPRefill:                1,
		RLLoginFailuresFree:           5,
		RLLoginBackoffMaxSeconds:      60,
		WatchMaxStreams:               10000,
		WatchMaxStreamsPerIP:          50,
		ReconcileIntervalSeconds:      30,
		ShutdownDrainSeconds:          5,
		ShutdownTimeoutSeconds:        15,
		StartupTimeoutSeconds:         60,
	}
	if got != want {
		t.Errorf("LoadFrom defaults =\n%+v\nwant\n%+v", got, want)
	}

	durations := []struct {
		name      string
		got, want time.Duration
	}{
		{"TokenTTL", got.TokenTTL(), time.Hour},
		{"AuthHashWait", got.AuthHashWait(), time.Second},
		{"RLLoginBackoffMax", got.RLLoginBackoffMax(), time.Minute},
		{"RLIPSync", got.RLIPSync(), 200 * time.Millisecond},
		{"OrdersBatchWait", got.OrdersBatchWait(), 2 * time.Millisecond},
		{"OrdersQueueRetryAfter", got.OrdersQueueRetryAfter(), 2 * time.Second},
		{"ReconcileInterval", got.ReconcileInterval(), 30 * time.Second},
		{"ShutdownDrain", got.ShutdownDrain(), 5 * time.Second},
		{"ShutdownTimeout", got.ShutdownTimeout(), 15 * time.Second},
		{"StartupTimeout", got.StartupTimeout(), time.Minute},
		{"OrdersQueueReplicaTimeout", got.OrdersQueueReplicaTimeout(), 250 * time.Millisecond},
	}
	for _, d := range durations {
		if d.got != d.want {
			t.Errorf("%s() = %v, want %v", d.name, d.got, d.want)
		}
	}
	if got := got.OrdersQueueMinReplicas(); got != -1 {
		t.Errorf("OrdersQueueMinReplicas() = %d, want -1 (auto)", got)
	}
	if got := got.OrderMode(); got != OrderModeSync {
		t.Errorf("OrderMode() = %q, want %q", got, OrderModeSync)
	}
	if got := got.SlogLevel(); got != slog.LevelInfo {
		t.Errorf("SlogLevel() = %v, want %v", got, slog.LevelInfo)
	}
}

func TestLoadFromOverrides(t *testing.T) {
	got, err := LoadFrom(with(
		"FLASHSALE_DEV", "true",
		"DATABASE_URL", "postgres://u:p@db:5432/x",
		"REDIS_URL", "rediss://cache:6380/2",
		"HTTP_ADDR", "127.0.0.1:8000",
		"GRPC_ADDR", "127.0.0.1:9000",
		"LOG_LEVEL", "DEBUG",
		"LOG_ACCESS_PER_SECOND", "0",
		"AUTH_TOKEN_TTL_SECONDS", "60",
		"ADMIN_EMAIL", "root@example.com",
		"ADMIN_PASSWORD", "admin-password",
		"ORDERS_BATCH_WAIT_MS", "0",
		"RL_DISABLED", "1",
		"RL_GLOBAL_REFILL", "0.5",
		"ORDERS_BATCH_SIZE", "", // empty means default
		"ORDERS_QUEUE_ALLOW_VOLATILE", "true",
		"STARTUP_TIMEOUT_SECONDS", "5",
		"ORDERS_QUEUE_MIN_REPLICAS", " 2 ",
		"ORDERS_QUEUE_REPLICA_TIMEOUT_MS", "1000",
		"AUTH_HASH_CONCURRENCY", "3",
		"AUTH_HASH_WAIT_MS", "0",
	))
	if err != nil {
		t.Fatalf("LoadFrom: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"DevMode", got.DevMode, true},
		{"GeneratedSecret", got.GeneratedSecret, false},
		{"JWTSecret", got.JWTSecret, secret},
		{"DatabaseURL", got.DatabaseURL, "postgres://u:p@db:5432/x"},
		{"RedisURL", got.RedisURL, "rediss://cache:6380/2"},
		{"HTTPAddr", got.HTTPAddr, "127.0.0.1:8000"},
		{"GRPCAddr", got.GRPCAddr, "127.0.0.1:9000"},
		{"LogLevel", got.LogLevel, "debug"},
		{"SlogLevel", got.SlogLevel(), slog.LevelDebug},
		{"LogAccessPerSecond", got.LogAccessPerSecond, 0},
		{"TokenTTL", got.TokenTTL(), time.Minute},
		{"AdminEmail", got.AdminEmail, "root@example.com"},
		{"AdminPassword", got.AdminPassword, "admin-password"},
		{"OrdersBatchWait", got.OrdersBatchWait(), time.Duration(0)},
		{"OrdersBatchSize", got.OrdersBatchSize, 200},
		{"RLDisabled", got.RLDisabled, true},
		{"RLGlobalRefill", got.RLGlobalRefill, 0.5},
		{"OrdersQueueAllowVolatile", got.OrdersQueueAllowVolatile, true},
		{"StartupTimeout", got.StartupTimeout(), 5 * time.Second},
		{"OrdersQueueMinReplicas", got.OrdersQueueMinReplicas(), 2},
		{"OrdersQueueReplicaTimeout", got.OrdersQueueReplicaTimeout(), time.Second},
		{"AuthHashConcurrency", got.AuthHashConcurrency, 3},
		{"AuthHashWait", got.AuthHashWait(), time.Duration(0)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestTrustedProxies(t *testing.T) {
	for _, tt := range []struct {
		setting string
		want    string
	}{
		{"", "[]"},
		{"10.0.0.0/8", "[10.0.0.0/8]"},
		{" 10.1.2.3/8 , 192.0.2.7,2001:db8::/32,::ffff:198.51.100.1, ", "[10.0.0.0/8 192.0.2.7/32 2001:db8::/32 198.51.100.1/32]"},
		{"::ffff:10.0.0.0/104", "[10.0.0.0/8]"},
	} {
		c, err := LoadFrom(with("TRUSTED_PROXIES", tt.setting))
		if err != nil {
			t.Fatalf("LoadFrom(TRUSTED_PROXIES=%q): %v", tt.setting, err)
		}
		if got := fmt.Sprint(c.TrustedProxies()); got != tt.want {
			t.Errorf("TRUSTED_PROXIES=%q: TrustedProxies() = %s, want %s", tt.setting, got, tt.want)
		}
	}
}

func TestLoadFromDevModeGeneratesSecret(t *testing.T) {
	a, err := LoadFrom(map[string]string{"FLASHSALE_DEV": "true"})
	if err != nil {
		t.Fatalf("LoadFrom: %v", err)
	}
	if !a.GeneratedSecret {
		t.Errorf("GeneratedSecret = false, want true")
	}
	if len(a.JWTSecret) < MinJWTSecretLength {
		t.Errorf("generated secret is %d bytes, want at least %d", len(a.JWTSecret), MinJWTSecretLength)
	}
	b, err := LoadFrom(map[string]string{"FLASHSALE_DEV": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if a.JWTSecret == b.JWTSecret {
		t.Errorf("two loads generated the same secret %q", a.JWTSecret)
	}
}

func TestLoadFromOrderMode(t *testing.T) {
	tests := []struct {
		mode, useQueue string
		want           OrderMode
		wantErr        string // substring; empty means no error
	}{
		{"", "", OrderModeSync, ""},
		{"direct", "", OrderModeDirect, ""},
		{"sync", "", OrderModeSync, ""},
		{"queue", "", OrderModeQueue, ""},
		{"Sync", "false", OrderModeSync, ""},
		{"", "true", OrderModeQueue, ""},
		{"queue", "true", OrderModeQueue, ""},
		{"direct", "true", "", "ORDERS_USE_QUEUE=true conflicts with ORDER_MODE=direct"},
		{"sync", "true", "", "ORDERS_USE_QUEUE=true conflicts with ORDER_MODE=sync"},
		{"fast", "", "", `ORDER_MODE="fast" must be one of direct, sync, queue`},
		{"", "yes", "", `ORDERS_USE_QUEUE="yes" must be true or false`},
	}
	for _, tt := range tests {
		c, err := LoadFrom(with("ORDER_MODE", tt.mode, "ORDERS_USE_QUEUE", tt.useQueue))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ORDER_MODE=%q ORDERS_USE_QUEUE=%q: error = %v, want it to contain %q",
					tt.mode, tt.useQueue, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ORDER_MODE=%q ORDERS_USE_QUEUE=%q: error = %v, want nil", tt.mode, tt.useQueue, err)
			continue
		}
		if got := c.OrderMode(); got != tt.want {
			t.Errorf("ORDER_MODE=%q ORDERS_USE_QUEUE=%q: OrderMode() = %q, want %q",
				tt.mode, tt.useQueue, got, tt.want)
		}
	}
}

// TestTracing: tracing is on only when an exporter is named or an OTLP
// endpoint given, and OTEL_SDK_DISABLED is not true.
func TestTracing(t *testing.T) {
	tests := []struct {
		environ []string
		want    bool
	}{
		{nil, false},
		{[]string{"OTEL_TRACES_EXPORTER", "none"}, false},
		{[]string{"OTEL_TRACES_EXPORTER", "otlp"}, true},
		{[]string{"OTEL_TRACES_EXPORTER", "Console"}, true},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"}, true},
		{[]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/v1/traces"}, true},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318", "OTEL_TRACES_EXPORTER", "none"}, false},
		{[]string{"OTEL_TRACES_EXPORTER", "otlp", "OTEL_SDK_DISABLED", "true"}, false},
		{[]string{"OTEL_TRACES_SAMPLER", "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG", "0.01"}, false},
	}
	c, err := LoadFrom(with("OTEL_TRACES_SAMPLER", "ParentBased_TraceIDRatio", "OTEL_TRACES_SAMPLER_ARG", "0.01"))
	if name, ratio := c.TraceSampler(); err != nil || name != "parentbased_traceidratio" || ratio != 0.01 {
		t.Errorf("TraceSampler() = %q, %v (%v), want parentbased_traceidratio, 0.01", name, ratio, err)
	}
	c, _ = LoadFrom(with())
	if name, ratio := c.TraceSampler(); name != "parentbased_always_on" || ratio != 1 {
		t.Errorf("TraceSampler() by default = %q, %v, want parentbased_always_on, 1", name, ratio)
	}
	for _, tt := range tests {
		c, err := LoadFrom(with(tt.environ...))
		if err != nil {
			t.Errorf("%v: %v", tt.environ, err)
			continue
		}
		if got := c.Tracing(); got != tt.want {
			t.Errorf("%v: Tracing() = %v, want %v", tt.environ, got, tt.want)
		}
	}
}

func TestLoadFromInvalid(t *testing.T) {
	tests := []struct {
		name    string
		environ map[string]string
		want    string // substring of the error
	}{
		{"missing secret", map[string]string{},
			"config: AUTH_JWT_SECRET is required (at least 32 bytes), or set FLASHSALE_DEV=true to generate one"},
		{"short secret", with("AUTH_JWT_SECRET", "short"), "AUTH_JWT_SECRET is 5 bytes, must be at least 32"},
		{"short secret in dev mode", with("AUTH_JWT_SECRET", "short", "FLASHSALE_DEV", "true"), "AUTH_JWT_SECRET is 5 bytes"},
		{"bad dev flag", with("FLASHSALE_DEV", "maybe"), `FLASHSALE_DEV="maybe" must be true or false`},
		{"admin email without password", with("ADMIN_EMAIL", "root@example.com"), "ADMIN_EMAIL is set without ADMIN_PASSWORD"},
		{"admin password without email", with("ADMIN_PASSWORD", "admin-password"), "ADMIN_PASSWORD is set without ADMIN_EMAIL"},
		{"bad log level", with("LOG_LEVEL", "verbose"), `LOG_LEVEL="verbose" must be one of debug, info, warn, error`},
		{"negative access log budget", with("LOG_ACCESS_PER_SECOND", "-1"), "LOG_ACCESS_PER_SECOND=-1 must be at least 0"},
		{"access log budget not a number", with("LOG_ACCESS_PER_SECOND", "lots"), `LOG_ACCESS_PER_SECOND="lots" must be a whole number`},
		{"blank database url", with("DATABASE_URL", " "), "DATABASE_URL must not be blank"},
		{"bad redis url", with("REDIS_URL", "localhost:6379"), `REDIS_URL="localhost:6379" must be a redis://`},
		{"bad http addr", with("HTTP_ADDR", "8080"), `HTTP_ADDR="8080" must be host:port`},
		{"same addrs", with("HTTP_ADDR", ":7000", "GRPC_ADDR", ":7000"), "HTTP_ADDR and GRPC_ADDR must differ"},
		{"ttl not a number", with("AUTH_TOKEN_TTL_SECONDS", "1h"), `AUTH_TOKEN_TTL_SECONDS="1h" must be a whole number`},
		{"zero ttl", with("AUTH_TOKEN_TTL_SECONDS", "0"), "AUTH_TOKEN_TTL_SECONDS=0 must be positive"},
		{"zero batch", with("ORDERS_BATCH_SIZE", "0"), "ORDERS_BATCH_SIZE=0 must be at least 1"},
		{"negative wait", with("ORDERS_BATCH_WAIT_MS", "-1"), "ORDERS_BATCH_WAIT_MS=-1 must be at least 0"},
		{"zero queue", with("ORDERS_QUEUE_MAX_QUEUED", "0"), "ORDERS_QUEUE_MAX_QUEUED=0 must be at least 1"},
		{"zero retry", with("ORDERS_QUEUE_RETRY_AFTER_SECONDS", "0"), "ORDERS_QUEUE_RETRY_AFTER_SECONDS=0 must be at least 1"},
		{"negative workers", with("ORDERS_WORKER_CONCURRENCY", "-1"), "ORDERS_WORKER_CONCURRENCY=-1 must be at least 0"},
		{"zero capacity", with("RL_IP_CAPACITY", "0"), "RL_IP_CAPACITY=0 must be at least 1"},
		{"negative refill", with("RL_GLOBAL_REFILL", "-1"), "RL_GLOBAL_REFILL=-1 must be a positive number"},
		{"NaN refill", with("RL_USER_ORDER_REFILL", "NaN"), "RL_USER_ORDER_REFILL=NaN must be a positive number"},
		{"Inf refill", with("RL_IP_REFILL", "+Inf"), "RL_IP_REFILL=+Inf must be a positive number"},
		{"refill not a number", with("RL_IP_REFILL", "fast"), `RL_IP_REFILL="fast" must be a number`},
		{"ip sync too often", with("RL_IP_SYNC_MS", "5"), "RL_IP_SYNC_MS=5 must be from 10 to 5000"},
		{"ip sync too rare", with("RL_IP_SYNC_MS", "60000"), "RL_IP_SYNC_MS=60000 must be from 10 to 5000"},
		{"zero reconcile", with("RECONCILE_INTERVAL_SECONDS", "0"), "RECONCILE_INTERVAL_SECONDS=0 must be at least 1"},
		{"zero shutdown", with("SHUTDOWN_TIMEOUT_SECONDS", "0"), "SHUTDOWN_TIMEOUT_SECONDS=0 must be at least 1"},
		{"negative drain", with("SHUTDOWN_DRAIN_SECONDS", "-1"), "SHUTDOWN_DRAIN_SECONDS=-1 must be at least 0"},
		{"zero startup", with("STARTUP_TIMEOUT_SECONDS", "0"), "STARTUP_TIMEOUT_SECONDS=0 must be at least 1"},
		{"startup not a number", with("STARTUP_TIMEOUT_SECONDS", "1m"), `STARTUP_TIMEOUT_SECONDS="1m" must be a whole number`},
		{"bad min replicas", with("ORDERS_QUEUE_MIN_REPLICAS", "some"), `ORDERS_QUEUE_MIN_REPLICAS="some" must be auto or a whole number`},
		{"negative min replicas", with("ORDERS_QUEUE_MIN_REPLICAS", "-1"), `ORDERS_QUEUE_MIN_REPLICAS="-1" must be auto`},
		{"zero replica timeout", with("ORDERS_QUEUE_REPLICA_TIMEOUT_MS", "0"), "ORDERS_QUEUE_REPLICA_TIMEOUT_MS=0 must be at least 1"},
		{"bad volatile flag", with("ORDERS_QUEUE_ALLOW_VOLATILE", "yes"), `ORDERS_QUEUE_ALLOW_VOLATILE="yes" must be true or false`},
		{"zero sign-in capacity", with("RL_AUTH_IP_CAPACITY", "0"), "RL_AUTH_IP_CAPACITY=0 must be at least 1"},
		{"zero sign-in refill", with("RL_AUTH_IP_REFILL", "0"), "RL_AUTH_IP_REFILL=0 must be a positive number"},
		{"negative free logins", with("RL_LOGIN_FAILURES_FREE", "-1"), "RL_LOGIN_FAILURES_FREE=-1 must be at least 0"},
		{"zero login backoff", with("RL_LOGIN_BACKOFF_MAX_SECONDS", "0"), "RL_LOGIN_BACKOFF_MAX_SECONDS=0 must be at least 1"},
		{"zero watch cap", with("WATCH_MAX_STREAMS", "0"), "WATCH_MAX_STREAMS=0 must be at least 1"},
		{"zero watch cap per IP", with("WATCH_MAX_STREAMS_PER_IP", "0"), "WATCH_MAX_STREAMS_PER_IP=0 must be at least 1"},
		{"negative hash concurrency", with("AUTH_HASH_CONCURRENCY", "-1"), "AUTH_HASH_CONCURRENCY=-1 must be at least 0"},
		{"negative hash wait", with("AUTH_HASH_WAIT_MS", "-5"), "AUTH_HASH_WAIT_MS=-5 must be at least 0"},
		{"bad trusted proxy", with("TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal"), `TRUSTED_PROXIES="10.0.0.0/8, proxy.internal": "proxy.internal" is neither a CIDR`},
		{"bad trusted cidr", with("TRUSTED_PROXIES", "10.0.0.0/33"), `"10.0.0.0/33" is neither a CIDR`},
		{"unknown traces exporter", with("OTEL_TRACES_EXPORTER", "zipkin"), `OTEL_TRACES_EXPORTER="zipkin" must be one of otlp, console, none`},
		{"unknown sampler", with("OTEL_TRACES_SAMPLER", "sometimes"), `OTEL_TRACES_SAMPLER="sometimes" must be one of`},
		{"sampler ratio not a number", with("OTEL_TRACES_SAMPLER_ARG", "half"), `OTEL_TRACES_SAMPLER_ARG="half" must be a sampling ratio`},
		{"sampler ratio over 1", with("OTEL_TRACES_SAMPLER_ARG", "5"), `OTEL_TRACES_SAMPLER_ARG="5" must be a sampling ratio from 0 to 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadFrom(tt.environ)
			if err == nil {
				t.Fatalf("LoadFrom error = nil, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadFrom error =\n%v\nwant it to contain %q", err, tt.want)
			}
			if c != (Config{}) {
				t.Errorf("LoadFrom returned a non-zero Config with an error: %+v", c)
			}
		})
	}
}

func TestLoadFromListsEveryProblem(t *testing.T) {
	_, err := LoadFrom(map[string]string{
		"LOG_LEVEL":         "loud",
		"ORDER_MODE":        "fast",
		"ORDERS_BATCH_SIZE": "many",
		"ADMIN_EMAIL":       "root@example.com",
	})
	if err == nil {
		t.Fatal("LoadFrom error = nil, want four problems")
	}
	lines := strings.Split(err.Error(), "\n")
	wants := []string{"ORDERS_BATCH_SIZE=", "LOG_LEVEL=", "AUTH_JWT_SECRET is required", "ADMIN_EMAIL is set", "ORDER_MODE="}
	if len(lines) != len(wants) {
		t.Errorf("error has %d lines, want %d:\n%v", len(lines), len(wants), err)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q:\n%v", w, err)
		}
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "config: ") {
			t.Errorf("error line %q lacks the config: prefix", l)
		}
	}
	// A variable that did not parse is reported once, not again as zero.
	if strings.Contains(err.Error(), "ORDERS_BATCH_SIZE=0") {
		t.Errorf("unparsable ORDERS_BATCH_SIZE also reported as 0:\n%v", err)
	}
}

func TestLoadReadsProcessEnvironment(t *testing.T) {
	t.Setenv("AUTH_JWT_SECRET", secret)
	t.Setenv("HTTP_ADDR", ":18080")
	t.Setenv("FLASHSALE_DEV", "")
	c, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.HTTPAddr != ":18080" {
		t.Errorf("HTTPAddr = %q, want %q", c.HTTPAddr, ":18080")
	}
}

func TestLoadFromNilIgnoresProcessEnvironment(t *testing.T) {
	t.Setenv("AUTH_JWT_SECRET", secret)
	if _, err := LoadFrom(nil); err == nil || !strings.Contains(err.Error(), "AUTH_JWT_SECRET is required") {
		t.Errorf("LoadFrom(nil) error = %v, want missing AUTH_JWT_SECRET", err)
	}
}

func TestLogValueRedacts(t *testing.T) {
	c, err := LoadFrom(with(
		"DATABASE_URL", "postgres://app:hunter2@db/x",
		"ADMIN_EMAIL", "root@example.com",
		"ADMIN_PASSWORD", "admin-password",
	))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "config", c)
	out := b.String()
	for _, s := range []string{secret, "hunter2", "admin-password"} {
		if strings.Contains(out, s) {
			t.Errorf("logged config contains %q:\n%s", s, out)
		}
	}
	if !strings.Contains(out, "root@example.com") {
		t.Errorf("logged config lacks the admin email:\n%s", out)
	}
}

func TestLoadFromSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := LoadFrom(map[string]string{
		"AUTH_JWT_SECRET_FILE": write("jwt", secret+"\n"),
		"ADMIN_EMAIL":          "root@example.com",
		"ADMIN_PASSWORD_FILE":  write("admin", "admin-password\r\n"),
		"DATABASE_URL_FILE":    write("db", "postgres://app:hunter2@db/x"),
		"REDIS_URL_FILE":       write("redis", "redis://:pw@cache:6379/0\n"),
	})
	if err != nil {
		t.Fatalf("LoadFrom: %v", err)
	}
	if c.JWTSecret != secret || c.AdminPassword != "admin-password" ||
		c.DatabaseURL != "postgres://app:hunter2@db/x" || c.RedisURL != "redis://:pw@cache:6379/0" {
		t.Errorf("LoadFrom from files = secret %q, admin password %q, database %q, redis %q",
			c.JWTSecret, c.AdminPassword, c.DatabaseURL, c.RedisURL)
	}

	_, err = LoadFrom(map[string]string{
		"AUTH_JWT_SECRET_FILE": filepath.Join(dir, "missing"),
		"ADMIN_EMAIL":          "root@example.com",
		"ADMIN_PASSWORD":       "admin-password",
		"ADMIN_PASSWORD_FILE":  write("admin2", "other"),
	})
	if err == nil {
		t.Fatal("LoadFrom error = nil, want a missing file and a conflict")
	}
	for _, want := range []string{"AUTH_JWT_SECRET_FILE: open", "ADMIN_PASSWORD and ADMIN_PASSWORD_FILE are both set"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("LoadFrom error =\n%v\nwant it to contain %q", err, want)
		}
	}
	// The unreadable secret is reported once, not again as missing.
	if strings.Contains(err.Error(), "AUTH_JWT_SECRET is required") {
		t.Errorf("unreadable AUTH_JWT_SECRET_FILE also reported as a missing secret:\n%v", err)
	}
}
