// Package config loads the service's settings from the environment. It is
// the only package that reads environment variables, but for the OTEL_*
// details (exporter endpoint, protocol, headers, resource) that the
// OpenTelemetry SDK reads itself once Tracing says tracing is on.
package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// MinJWTSecretLength is the shortest AUTH_JWT_SECRET accepted, in bytes:
// HS256 should be keyed with at least as many bits as its output.
const MinJWTSecretLength = 32

// OrderMode is how an order request reaches the database.
type OrderMode string

// Order modes, chosen with ORDER_MODE (or ORDERS_USE_QUEUE=true for queue).
const (
	// OrderModeDirect places each order in its own Postgres transaction.
	OrderModeDirect OrderMode = "direct"
	// OrderModeSync, the default, admits through the Redis gate, then
	// writes to Postgres in batches while the request waits for its result.
	OrderModeSync OrderMode = "sync"
	// OrderModeQueue admits through the Redis gate and hands the order to a
	// queue that workers drain; the request returns before the write.
	OrderModeQueue OrderMode = "queue"
)

// Config is every setting of the service. Load fills and validates it;
// durations are whole numbers in the unit their variable names, with a
// method returning the time.Duration.
type Config struct {
	// DevMode (FLASHSALE_DEV) relaxes what a laptop cannot provide, such as
	// a JWT secret.
	DevMode bool `env:"FLASHSALE_DEV"`

	DatabaseURL string `env:"DATABASE_URL" envDefault:"postgres://postgres@127.0.0.1:5432/flashsale?sslmode=disable"`
	RedisURL    string `env:"REDIS_URL" envDefault:"redis://127.0.0.1:6379/0"`
	// RedisKeyPrefix starts every key flashsale writes, so deployments (and
	// tests) can share one Redis.
	RedisKeyPrefix string `env:"REDIS_KEY_PREFIX" envDefault:"fs"`
	HTTPAddr       string `env:"HTTP_ADDR" envDefault:":8080"`
	GRPCAddr       string `env:"GRPC_ADDR" envDefault:":9090"`
	// TLSCertFile and TLSKeyFile (PEM; both or neither) make both listeners
	// serve TLS; the certificate file may hold the chain after the leaf.
	TLSCertFile string `env:"TLS_CERT_FILE"`
	TLSKeyFile  string `env:"TLS_KEY_FILE"`
	// TLSClientCAFile (PEM), with TLS on, makes the gRPC listener require
	// a client certificate signed by one of its CAs (mTLS for internal
	// callers); REST stays server-authenticated only.
	TLSClientCAFile string `env:"TLS_CLIENT_CA_FILE"`
	// LogLevel is one of debug, info, warn, error; Load lower-cases it.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`
	// LogAccessPerSecond bounds the access log (and the HTTP server's
	// error log) to this many lines a second per process; the lines over
	// it are counted in a summary line. Failures (Internal, a dependency
	// down, panics) are logged whatever it says. 0: a line for every call.
	LogAccessPerSecond int `env:"LOG_ACCESS_PER_SECOND" envDefault:"20"`

	// JWTSecret signs access tokens; at least MinJWTSecretLength bytes.
	JWTSecret       string `env:"AUTH_JWT_SECRET"`
	TokenTTLSeconds int    `env:"AUTH_TOKEN_TTL_SECONDS" envDefault:"3600"`
	// AuthHashConcurrency is how many argon2id password hashes (19 MiB
	// each) run at once; 0 leaves it to auth.DefaultHashConcurrency (half
	// of GOMAXPROCS, at least one).
	AuthHashConcurrency int `env:"AUTH_HASH_CONCURRENCY"`
	// AuthHashWaitMS is how long a sign-up or sign-in waits for a hashing
	// slot before it is answered Unavailable.
	AuthHashWaitMS int `env:"AUTH_HASH_WAIT_MS" envDefault:"1000"`
	// GeneratedSecret is set when DevMode made up JWTSecret because none was
	// given; tokens then die with the process, so the caller should warn.
	GeneratedSecret bool `env:"-"`

	// AdminEmail and AdminPassword, when both set, name an admin account
	// that is created or reset at start-up.
	AdminEmail    string `env:"ADMIN_EMAIL"`
	AdminPassword string `env:"ADMIN_PASSWORD"`

	// OrderModeSetting is ORDER_MODE as given (empty when unset); use
	// OrderMode, which applies the default and ORDERS_USE_QUEUE.
	OrderModeSetting string `env:"ORDER_MODE"`
	// OrdersUseQueue (ORDERS_USE_QUEUE=true) is another way to ask for
	// OrderModeQueue.
	OrdersUseQueue               bool `env:"ORDERS_USE_QUEUE"`
	OrdersBatchSize              int  `env:"ORDERS_BATCH_SIZE" envDefault:"200"`
	OrdersBatchWaitMS            int  `env:"ORDERS_BATCH_WAIT_MS" envDefault:"2"`
	OrdersQueueMaxQueued         int  `env:"ORDERS_QUEUE_MAX_QUEUED" envDefault:"100000"`
	OrdersQueueRetryAfterSeconds int  `env:"ORDERS_QUEUE_RETRY_AFTER_SECONDS" envDefault:"2"`
	// OrdersWorkerConcurrency is how many queue workers serve runs in-process
	// (0: leave it to `flashsale worker`).
	OrdersWorkerConcurrency int `env:"ORDERS_WORKER_CONCURRENCY" envDefault:"1"`
	// OrdersClaimIdleSeconds is how long a queued order may sit with a
	// worker before another takes it over (the first one presumed dead).
	OrdersClaimIdleSeconds int `env:"ORDERS_CLAIM_IDLE_SECONDS" envDefault:"15"`
	// OrdersQueueAllowVolatile lets queue mode run on a Redis without an
	// append-only file, accepting that a Redis restart loses the orders
	// acknowledged but not yet written; without it serve and worker refuse
	// to start, and serve refuses orders, while Redis has no AOF.
	OrdersQueueAllowVolatile bool `env:"ORDERS_QUEUE_ALLOW_VOLATILE"`
	// OrdersQueueMinReplicasSetting is ORDERS_QUEUE_MIN_REPLICAS as given:
	// "auto" or a whole number; use OrdersQueueMinReplicas.
	OrdersQueueMinReplicasSetting string `env:"ORDERS_QUEUE_MIN_REPLICAS" envDefault:"auto"`
	// OrdersQueueReplicaTimeoutMS bounds the wait for those replicas.
	OrdersQueueReplicaTimeoutMS int `env:"ORDERS_QUEUE_REPLICA_TIMEOUT_MS" envDefault:"250"`

	// Rate limits are token buckets: a capacity (burst) and a refill rate
	// in tokens per second.
	RLDisabled       bool    `env:"RL_DISABLED"`
	RLGlobalCapacity int     `env:"RL_GLOBAL_CAPACITY" envDefault:"5000"`
	RLGlobalRefill   float64 `env:"RL_GLOBAL_REFILL" envDefault:"2000"`
	RLIPCapacity     int     `env:"RL_IP_CAPACITY" envDefault:"200"`
	RLIPRefill       float64 `env:"RL_IP_REFILL" envDefault:"50"`
	// RLIPSyncMS is how often each process reports the calls it let
	// through per client IP to the per-IP buckets in Redis, which the
	// fleet shares (sync and queue modes); the fleet may let an IP past its
	// bucket by what the processes let through in one interval.
	RLIPSyncMS          int     `env:"RL_IP_SYNC_MS" envDefault:"200"`
	RLUserOrderCapacity int     `env:"RL_USER_ORDER_CAPACITY" envDefault:"5"`
	RLUserOrderRefill   float64 `env:"RL_USER_ORDER_REFILL" envDefault:"1"`
	// RLAuthIP* is the bucket per client IP for Register and Login
	// together: each hashes a password, so it is far stricter than RL_IP_*.
	RLAuthIPCapacity int     `env:"RL_AUTH_IP_CAPACITY" envDefault:"20"`
	RLAuthIPRefill   float64 `env:"RL_AUTH_IP_REFILL" envDefault:"1"`
	// RLLoginFailuresFree is how many logins to one account may go without
	// a success before each further one waits a delay that doubles from 1 s
	// up to RLLoginBackoffMaxSeconds.
	RLLoginFailuresFree      int `env:"RL_LOGIN_FAILURES_FREE" envDefault:"5"`
	RLLoginBackoffMaxSeconds int `env:"RL_LOGIN_BACKOFF_MAX_SECONDS" envDefault:"60"`

	// WatchMaxStreams and WatchMaxStreamsPerIP cap the open
	// WatchSaleStatus streams of this process, in all and per client
	// address; they hold with RL_DISABLED too.
	WatchMaxStreams      int `env:"WATCH_MAX_STREAMS" envDefault:"10000"`
	WatchMaxStreamsPerIP int `env:"WATCH_MAX_STREAMS_PER_IP" envDefault:"50"`

	// TrustedProxiesSetting is TRUSTED_PROXIES as given: comma-separated
	// CIDRs or addresses of the proxies whose X-Forwarded-For is believed.
	// Use TrustedProxies, which parses it.
	TrustedProxiesSetting string `env:"TRUSTED_PROXIES"`

	ReconcileIntervalSeconds int `env:"RECONCILE_INTERVAL_SECONDS" envDefault:"30"`
	// DebugPprof serves net/http/pprof under /debug/pprof/ on HTTP_ADDR,
	// for profiling under load; keep it off where the port is public.
	DebugPprof bool `env:"DEBUG_PPROF"`
	// ShutdownDrainSeconds is how long serve goes on serving after SIGTERM
	// with /readyz and gRPC health failing, so load balancers stop sending
	// before it stops accepting.
	ShutdownDrainSeconds int `env:"SHUTDOWN_DRAIN_SECONDS" envDefault:"5"`
	// ShutdownTimeoutSeconds bounds, after the drain, the wait for the calls
	// in flight.
	ShutdownTimeoutSeconds int `env:"SHUTDOWN_TIMEOUT_SECONDS" envDefault:"15"`
	// StartupTimeoutSeconds is how long a command waits at start for
	// PostgreSQL and Redis to answer, both together, so that it can start
	// before them or while Redis loads its data after a restart.
	StartupTimeoutSeconds int `env:"STARTUP_TIMEOUT_SECONDS" envDefault:"60"`

	// The OpenTelemetry settings that decide whether tracing is on (see
	// Tracing) and that are checked here; the SDK reads the rest of OTEL_*.
	OTelSDKDisabled    bool   `env:"OTEL_SDK_DISABLED"`
	OTelTracesExporter string `env:"OTEL_TRACES_EXPORTER"`
	OTelEndpoint       string `env:"OTEL_EXPORTER_OTLP_ENDPOINT"`
	OTelTracesEndpoint string `env:"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"`
	OTelTracesSampler  string `env:"OTEL_TRACES_SAMPLER"`
	// OTelSamplerArg is OTEL_TRACES_SAMPLER_ARG as given; use TraceSampler.
	OTelSamplerArg string `env:"OTEL_TRACES_SAMPLER_ARG"`
}

// Load reads the process environment; see LoadFrom.
func Load() (Config, error) {
	return LoadFrom(env.ToMap(os.Environ()))
}

// LoadFrom builds a Config from environ (variable name to value), applying
// defaults; a <name>_FILE of SecretFileVars supplies <name> from a file. It
// returns one error listing every problem found, one per line,
// rather than stopping at the first. In DevMode without AUTH_JWT_SECRET it
// generates a random secret and sets GeneratedSecret; it never logs.
func LoadFrom(environ map[string]string) (Config, error) {
	if environ == nil {
		// A nil Environment makes env fall back to the process environment.
		environ = map[string]string{}
	}
	var c Config
	var problems []error
	bad := map[string]bool{} // variables that did not parse; not validated further
	environ, fileProblems := readSecretFiles(environ)
	for _, p := range fileProblems {
		bad[p.name] = true
		problems = append(problems, p.err)
	}
	if err := env.ParseWithOptions(&c, env.Options{Environment: environ}); err != nil {
		var agg env.AggregateError
		if !errors.As(err, &agg) {
			agg.Errors = []error{err}
		}
		for _, e := range agg.Errors {
			key, msg := describeParseError(e, environ)
			bad[key] = true
			problems = append(problems, errors.New("config: "+msg))
		}
	}

	check := func(key string, ok bool, format string, args ...any) {
		if !bad[key] && !ok {
			problems = append(problems, fmt.Errorf("config: "+format, args...))
		}
	}

	check("DATABASE_URL", strings.TrimSpace(c.DatabaseURL) != "", "DATABASE_URL must not be blank")
	check("REDIS_URL", validRedisURL(c.RedisURL),
		"REDIS_URL=%q must be a redis://, rediss:// or unix:// URL", c.RedisURL)
	check("HTTP_ADDR", validAddr(c.HTTPAddr), "HTTP_ADDR=%q must be host:port, such as :8080", c.HTTPAddr)
	check("GRPC_ADDR", validAddr(c.GRPCAddr), "GRPC_ADDR=%q must be host:port, such as :9090", c.GRPCAddr)
	check("GRPC_ADDR", c.HTTPAddr != c.GRPCAddr, "HTTP_ADDR and GRPC_ADDR must differ (both %q)", c.GRPCAddr)

	check("TLS_CERT_FILE", c.TLSCertFile != "" || c.TLSKeyFile == "",
		"TLS_KEY_FILE is set without TLS_CERT_FILE; set both or neither")
	check("TLS_KEY_FILE", c.TLSKeyFile != "" || c.TLSCertFile == "",
		"TLS_CERT_FILE is set without TLS_KEY_FILE; set both or neither")
	check("TLS_CLIENT_CA_FILE", c.TLSClientCAFile == "" || c.TLS(),
		"TLS_CLIENT_CA_FILE is set without TLS_CERT_FILE and TLS_KEY_FILE; client certificates need TLS on")
	if c.TLS() {
		_, _, err := c.TLSFiles()
		check("TLS_CERT_FILE", err == nil, "%v", err)
	}

	c.LogLevel = strings.ToLower(strings.TrimSpace(c.LogLevel))
	_, levelOK := logLevels[c.LogLevel]
	check("LOG_LEVEL", levelOK, "LOG_LEVEL=%q must be one of debug, info, warn, error", c.LogLevel)
	check("LOG_ACCESS_PER_SECOND", c.LogAccessPerSecond >= 0,
		"LOG_ACCESS_PER_SECOND=%d must be at least 0 (0: log every call)", c.LogAccessPerSecond)

	switch {
	case c.JWTSecret == "" && c.DevMode:
		secret, err := randomSecret()
		if err != nil {
			problems = append(problems, fmt.Errorf("config: generate AUTH_JWT_SECRET: %w", err))
		}
		c.JWTSecret, c.GeneratedSecret = secret, true
	case c.JWTSecret == "":
		check("AUTH_JWT_SECRET", false,
			"AUTH_JWT_SECRET is required (at least %d bytes), or set FLASHSALE_DEV=true to generate one",
			MinJWTSecretLength)
	default:
		check("AUTH_JWT_SECRET", len(c.JWTSecret) >= MinJWTSecretLength,
			"AUTH_JWT_SECRET is %d bytes, must be at least %d", len(c.JWTSecret), MinJWTSecretLength)
	}
	check("AUTH_TOKEN_TTL_SECONDS", c.TokenTTLSeconds > 0,
		"AUTH_TOKEN_TTL_SECONDS=%d must be positive", c.TokenTTLSeconds)
	check("ADMIN_EMAIL", c.AdminEmail != "" || c.AdminPassword == "",
		"ADMIN_PASSWORD is set without ADMIN_EMAIL; set both or neither")
	check("ADMIN_PASSWORD", c.AdminPassword != "" || c.AdminEmail == "",
		"ADMIN_EMAIL is set without ADMIN_PASSWORD; set both or neither")

	c.OrderModeSetting = strings.ToLower(strings.TrimSpace(c.OrderModeSetting))
	switch OrderMode(c.OrderModeSetting) {
	case "", OrderModeDirect, OrderModeSync, OrderModeQueue:
		check("ORDERS_USE_QUEUE",
			!c.OrdersUseQueue || c.OrderModeSetting == "" || OrderMode(c.OrderModeSetting) == OrderModeQueue,
			"ORDERS_USE_QUEUE=true conflicts with ORDER_MODE=%s; set one of them", c.OrderModeSetting)
	default:
		check("ORDER_MODE", false, "ORDER_MODE=%q must be one of direct, sync, queue", c.OrderModeSetting)
	}
	atLeast := func(key string, v, min int) {
		check(key, v >= min, "%s=%d must be at least %d", key, v, min)
	}
	atLeast("AUTH_HASH_CONCURRENCY", c.AuthHashConcurrency, 0)
	atLeast("AUTH_HASH_WAIT_MS", c.AuthHashWaitMS, 0)
	atLeast("ORDERS_BATCH_SIZE", c.OrdersBatchSize, 1)
	atLeast("ORDERS_BATCH_WAIT_MS", c.OrdersBatchWaitMS, 0)
	atLeast("ORDERS_QUEUE_MAX_QUEUED", c.OrdersQueueMaxQueued, 1)
	atLeast("ORDERS_QUEUE_RETRY_AFTER_SECONDS", c.OrdersQueueRetryAfterSeconds, 1)
	atLeast("ORDERS_WORKER_CONCURRENCY", c.OrdersWorkerConcurrency, 0) // 0: no workers in serve, only `flashsale worker`
	atLeast("ORDERS_CLAIM_IDLE_SECONDS", c.OrdersClaimIdleSeconds, 1)
	c.OrdersQueueMinReplicasSetting = strings.ToLower(strings.TrimSpace(c.OrdersQueueMinReplicasSetting))
	if n, err := strconv.Atoi(c.OrdersQueueMinReplicasSetting); c.OrdersQueueMinReplicasSetting != "auto" {
		check("ORDERS_QUEUE_MIN_REPLICAS", err == nil && n >= 0,
			"ORDERS_QUEUE_MIN_REPLICAS=%q must be auto or a whole number, 0 or more", c.OrdersQueueMinReplicasSetting)
	}
	atLeast("ORDERS_QUEUE_REPLICA_TIMEOUT_MS", c.OrdersQueueReplicaTimeoutMS, 1)

	positiveRate := func(key string, v float64) {
		check(key, v > 0 && !math.IsInf(v, 0), "%s=%v must be a positive number of tokens per second", key, v)
	}
	atLeast("RL_GLOBAL_CAPACITY", c.RLGlobalCapacity, 1)
	positiveRate("RL_GLOBAL_REFILL", c.RLGlobalRefill)
	atLeast("RL_IP_CAPACITY", c.RLIPCapacity, 1)
	positiveRate("RL_IP_REFILL", c.RLIPRefill)
	check("RL_IP_SYNC_MS", c.RLIPSyncMS >= 10 && c.RLIPSyncMS <= 5000,
		"RL_IP_SYNC_MS=%d must be from 10 to 5000", c.RLIPSyncMS)
	atLeast("RL_USER_ORDER_CAPACITY", c.RLUserOrderCapacity, 1)
	positiveRate("RL_USER_ORDER_REFILL", c.RLUserOrderRefill)
	atLeast("RL_AUTH_IP_CAPACITY", c.RLAuthIPCapacity, 1)
	positiveRate("RL_AUTH_IP_REFILL", c.RLAuthIPRefill)
	atLeast("RL_LOGIN_FAILURES_FREE", c.RLLoginFailuresFree, 0)
	atLeast("RL_LOGIN_BACKOFF_MAX_SECONDS", c.RLLoginBackoffMaxSeconds, 1)

	atLeast("WATCH_MAX_STREAMS", c.WatchMaxStreams, 1)
	atLeast("WATCH_MAX_STREAMS_PER_IP", c.WatchMaxStreamsPerIP, 1)
	_, err := parsePrefixes(c.TrustedProxiesSetting)
	check("TRUSTED_PROXIES", err == nil, "TRUSTED_PROXIES=%q: %v", c.TrustedProxiesSetting, err)

	atLeast("RECONCILE_INTERVAL_SECONDS", c.ReconcileIntervalSeconds, 1)
	atLeast("SHUTDOWN_DRAIN_SECONDS", c.ShutdownDrainSeconds, 0)
	atLeast("SHUTDOWN_TIMEOUT_SECONDS", c.ShutdownTimeoutSeconds, 1)
	atLeast("STARTUP_TIMEOUT_SECONDS", c.StartupTimeoutSeconds, 1)

	c.OTelTracesExporter = strings.ToLower(strings.TrimSpace(c.OTelTracesExporter))
	switch c.OTelTracesExporter {
	case "", "none", "otlp", "console":
	default:
		check("OTEL_TRACES_EXPORTER", false, "OTEL_TRACES_EXPORTER=%q must be one of otlp, console, none", c.OTelTracesExporter)
	}
	c.OTelTracesSampler = strings.ToLower(strings.TrimSpace(c.OTelTracesSampler))
	switch c.OTelTracesSampler {
	case "", "always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio":
	default:
		check("OTEL_TRACES_SAMPLER", false, "OTEL_TRACES_SAMPLER=%q must be one of always_on, always_off, traceidratio, "+
			"parentbased_always_on, parentbased_always_off, parentbased_traceidratio", c.OTelTracesSampler)
	}
	if arg := strings.TrimSpace(c.OTelSamplerArg); arg != "" {
		r, err := strconv.ParseFloat(arg, 64)
		check("OTEL_TRACES_SAMPLER_ARG", err == nil && r >= 0 && r <= 1,
			"OTEL_TRACES_SAMPLER_ARG=%q must be a sampling ratio from 0 to 1", c.OTelSamplerArg)
	}

	if len(problems) > 0 {
		return Config{}, errors.Join(problems...)
	}
	return c, nil
}

// OrderMode returns the order mode in force: queue when ORDERS_USE_QUEUE is
// true, else ORDER_MODE, else sync.
func (c Config) OrderMode() OrderMode {
	switch {
	case c.OrdersUseQueue:
		return OrderModeQueue
	case c.OrderModeSetting == "":
		return OrderModeSync
	default:
		return OrderMode(c.OrderModeSetting)
	}
}

// Tracing reports whether to trace: OTEL_TRACES_EXPORTER names an exporter
// (otlp, console), or is unset while an OTLP endpoint is given
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), and
// OTEL_SDK_DISABLED is not true. Otherwise tracing is off and costs nothing.
func (c Config) Tracing() bool {
	if c.OTelSDKDisabled {
		return false
	}
	switch c.OTelTracesExporter {
	case "none":
		return false
	case "":
		return c.OTelEndpoint != "" || c.OTelTracesEndpoint != ""
	}
	return true
}

// TraceSampler is OTEL_TRACES_SAMPLER (default parentbased_always_on) and
// the ratio of the traceidratio samplers (OTEL_TRACES_SAMPLER_ARG, default 1).
func (c Config) TraceSampler() (name string, ratio float64) {
	name, ratio = c.OTelTracesSampler, 1
	if name == "" {
		name = "parentbased_always_on"
	}
	if r, err := strconv.ParseFloat(strings.TrimSpace(c.OTelSamplerArg), 64); err == nil {
		ratio = r
	}
	return name, ratio
}

// TokenTTL is how long an access token stays valid.
func (c Config) TokenTTL() time.Duration {
	return time.Duration(c.TokenTTLSeconds) * time.Second
}

// AuthHashWait is how long a password hash waits for room.
func (c Config) AuthHashWait() time.Duration {
	return time.Duration(c.AuthHashWaitMS) * time.Millisecond
}

// OrdersBatchWait is how long a batch waits to fill before it is written.
func (c Config) OrdersBatchWait() time.Duration {
	return time.Duration(c.OrdersBatchWaitMS) * time.Millisecond
}

// OrdersQueueRetryAfter is the Retry-After given when the order queue is full.
func (c Config) OrdersQueueRetryAfter() time.Duration {
	return time.Duration(c.OrdersQueueRetryAfterSeconds) * time.Second
}

// OrdersClaimIdle is ORDERS_CLAIM_IDLE_SECONDS as a duration.
func (c Config) OrdersClaimIdle() time.Duration {
	return time.Duration(c.OrdersClaimIdleSeconds) * time.Second
}

// OrdersQueueMinReplicas is how many Redis replicas must hold a queued
// order before it is acknowledged: ORDERS_QUEUE_MIN_REPLICAS, or -1 for
// "auto" (1 on a Redis Cluster with replicas, else 0).
func (c Config) OrdersQueueMinReplicas() int {
	n, err := strconv.Atoi(c.OrdersQueueMinReplicasSetting)
	if err != nil {
		return -1
	}
	return n
}

// OrdersQueueReplicaTimeout is ORDERS_QUEUE_REPLICA_TIMEOUT_MS as a duration.
func (c Config) OrdersQueueReplicaTimeout() time.Duration {
	return time.Duration(c.OrdersQueueReplicaTimeoutMS) * time.Millisecond
}

// ReconcileInterval is how often Redis stock is reconciled with Postgres.
func (c Config) ReconcileInterval() time.Duration {
	return time.Duration(c.ReconcileIntervalSeconds) * time.Second
}

// RLIPSync is how often the per-IP buckets are reported to Redis.
func (c Config) RLIPSync() time.Duration {
	return time.Duration(c.RLIPSyncMS) * time.Millisecond
}

// RLLoginBackoffMax is the longest delay between logins to one account.
func (c Config) RLLoginBackoffMax() time.Duration {
	return time.Duration(c.RLLoginBackoffMaxSeconds) * time.Second
}

// TrustedProxies are the networks of TRUSTED_PROXIES (none by default): a
// bare address is a network of one.
func (c Config) TrustedProxies() []netip.Prefix {
	p, _ := parsePrefixes(c.TrustedProxiesSetting) // checked by LoadFrom
	return p
}

// parsePrefixes reads a comma-separated list of CIDRs and addresses.
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if a, err := netip.ParseAddr(f); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR such as 10.0.0.0/8 nor an address", f)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// ShutdownDrain is how long serve keeps serving after SIGTERM while its
// readiness and health checks fail.
func (c Config) ShutdownDrain() time.Duration {
	return time.Duration(c.ShutdownDrainSeconds) * time.Second
}

// ShutdownTimeout bounds the wait for calls in flight once serve stops
// accepting.
func (c Config) ShutdownTimeout() time.Duration {
	return time.Duration(c.ShutdownTimeoutSeconds) * time.Second
}

// StartupTimeout bounds the wait for PostgreSQL and Redis at start.
func (c Config) StartupTimeout() time.Duration {
	return time.Duration(c.StartupTimeoutSeconds) * time.Second
}

// SlogLevel returns LogLevel as a slog.Level.
func (c Config) SlogLevel() slog.Level {
	return logLevels[c.LogLevel]
}

// LogValue implements slog.LogValuer, so that logging a Config shows its
// settings without the JWT secret, the admin password or URL passwords.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("dev_mode", c.DevMode),
		slog.String("database_url", redactURL(c.DatabaseURL)),
		slog.String("redis_url", redactURL(c.RedisURL)),
		slog.String("http_addr", c.HTTPAddr),
		slog.String("grpc_addr", c.GRPCAddr),
		slog.Bool("tls", c.TLS()),
		slog.Bool("tls_client_certificates", c.TLS() && c.TLSClientCAFile != ""),
		slog.String("log_level", c.LogLevel),
		slog.Int("log_access_per_second", c.LogAccessPerSecond),
		slog.Bool("generated_secret", c.GeneratedSecret),
		slog.Duration("token_ttl", c.TokenTTL()),
		slog.Int("auth_hash_concurrency", c.AuthHashConcurrency),
		slog.Duration("auth_hash_wait", c.AuthHashWait()),
		slog.String("admin_email", c.AdminEmail),
		slog.String("order_mode", string(c.OrderMode())),
		slog.Int("orders_batch_size", c.OrdersBatchSize),
		slog.Duration("orders_batch_wait", c.OrdersBatchWait()),
		slog.Int("orders_queue_max_queued", c.OrdersQueueMaxQueued),
		slog.Int("orders_worker_concurrency", c.OrdersWorkerConcurrency),
		slog.Bool("orders_queue_allow_volatile", c.OrdersQueueAllowVolatile),
		slog.String("orders_queue_min_replicas", c.OrdersQueueMinReplicasSetting),
		slog.Duration("orders_queue_replica_timeout", c.OrdersQueueReplicaTimeout()),
		slog.Bool("rl_disabled", c.RLDisabled),
		slog.Duration("rl_ip_sync", c.RLIPSync()),
		slog.String("trusted_proxies", c.TrustedProxiesSetting),
		slog.Int("watch_max_streams", c.WatchMaxStreams),
		slog.Int("watch_max_streams_per_ip", c.WatchMaxStreamsPerIP),
		slog.Duration("reconcile_interval", c.ReconcileInterval()),
		slog.Duration("shutdown_drain", c.ShutdownDrain()),
		slog.Duration("shutdown_timeout", c.ShutdownTimeout()),
		slog.Duration("startup_timeout", c.StartupTimeout()),
		slog.Bool("tracing", c.Tracing()),
	)
}

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

func randomSecret() (string, error) {
	b := make([]byte, MinJWTSecretLength)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func validAddr(s string) bool {
	_, port, err := net.SplitHostPort(s)
	return err == nil && port != ""
}

func validRedisURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "redis", "rediss":
		return u.Host != ""
	case "unix":
		return u.Path != ""
	}
	return false
}

// redactURL hides the password in a URL; a value that does not parse as a
// URL is hidden entirely, as it may be a DSN with a password in it.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return "[redacted]"
	}
	return u.Redacted()
}

// describeParseError turns an env parse error, which names the Go field,
// into a message naming the variable and its value.
func describeParseError(err error, environ map[string]string) (key, msg string) {
	var pe env.ParseError
	if !errors.As(err, &pe) {
		return "", err.Error()
	}
	f, ok := reflect.TypeFor[Config]().FieldByName(pe.Name)
	if !ok {
		return "", err.Error()
	}
	key, _, _ = strings.Cut(f.Tag.Get("env"), ",")
	what := "a valid value"
	switch f.Type.Kind() {
	case reflect.Bool:
		what = "true or false"
	case reflect.Int, reflect.Int64:
		what = "a whole number"
	case reflect.Float64:
		what = "a number"
	}
	return key, fmt.Sprintf("%s=%q must be %s", key, environ[key], what)
}
