// Command flashload is the stress harness: it sets up a product, a sale and
// customers through the public API, drives orders (or sale-status reads, or
// health checks) over gRPC with ghz's runner or over REST, reports
// throughput, latency and every outcome, measures the server's ceiling on a
// trivial call in the same run, and then checks against PostgreSQL that no
// invariant broke: no oversell, one order per user, no lost acknowledged
// order, no phantom order. A broken invariant makes it exit non-zero.
//
//	flashload --transport grpc --mode distinct --stock 1000 --users 20000 --concurrency 100 --duration 20s
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "flashload:", err)
		os.Exit(1)
	}
}

// options are the command-line flags.
type options struct {
	name          string
	transport     string
	mode          string
	grpcAddr      string
	httpAddr      string
	targets       []string
	databaseURL   string
	adminEmail    string
	adminPassword string
	jwtSecret     string
	productID     string
	stock         int
	users         int
	times         int
	cpuProfile    string
	concurrency   int
	connections   int
	duration      time.Duration
	requests      int
	rate          int
	warmup        int
	readRatio     float64
	timeout       time.Duration
	registerPar   int
	ceiling       time.Duration
	drainTimeout  time.Duration
	progress      time.Duration
	out           string
	errorsCSV     string
	noVerify      bool
	tls           clientTLS
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("flashload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.name, "name", "", "label of this run in the report (default: transport and mode)")
	fs.StringVar(&o.transport, "transport", "grpc", "grpc (ghz runner) or rest (net/http)")
	fs.StringVar(&o.mode, "mode", "distinct", "distinct (each user orders --times times), same-user, mixed (status reads and orders), status, ceiling")
	fs.StringVar(&o.grpcAddr, "grpc", "127.0.0.1:9090", "gRPC address of the server (set-up always uses gRPC)")
	fs.StringVar(&o.httpAddr, "http", "127.0.0.1:8080", "REST address of the server")
	fs.Func("target", "a server to spread the load over, in --transport's protocol (host:port); repeat it for a fleet\n(default: --grpc or --http; set-up and checks always use --grpc)", func(v string) error {
		if v == "" {
			return errors.New("empty --target")
		}
		o.targets = append(o.targets, v)
		return nil
	})
	fs.StringVar(&o.databaseURL, "database-url", os.Getenv("DATABASE_URL"), "the server's PostgreSQL, read by the invariant checks (and written when minting users)")
	fs.StringVar(&o.adminEmail, "admin-email", os.Getenv("ADMIN_EMAIL"), "admin the server was started with")
	fs.StringVar(&o.adminPassword, "admin-password", os.Getenv("ADMIN_PASSWORD"), "its password")
	fs.StringVar(&o.jwtSecret, "jwt-secret", "", "the server's AUTH_JWT_SECRET: insert users into the database and mint their tokens instead of registering them")
	fs.StringVar(&o.productID, "product", "", "reuse this product's open sale instead of creating one")
	fs.IntVar(&o.stock, "stock", 100, "stock of the product created (S)")
	fs.IntVar(&o.users, "users", 1000, "distinct customers (U)")
	fs.IntVar(&o.times, "times", 1, "orders per user in distinct and mixed modes (K)")
	fs.IntVar(&o.concurrency, "concurrency", 50, "concurrent callers")
	fs.IntVar(&o.connections, "connections", 1, "gRPC connections shared by the callers")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (0: when the request count is reached)")
	fs.IntVar(&o.requests, "requests", 0, "total requests (0: users x times in distinct mode, else until --duration)")
	fs.IntVar(&o.rate, "rate", 0, "target requests per second (0: as fast as possible)")
	fs.IntVar(&o.warmup, "warmup", 0, "leave the first N calls out of the latency figures")
	fs.Float64Var(&o.readRatio, "read-ratio", 0.9, "mixed mode: share of callers reading the sale status")
	fs.DurationVar(&o.timeout, "timeout", 20*time.Second, "per-call timeout")
	fs.IntVar(&o.registerPar, "register-concurrency", 16, "parallel registrations in set-up")
	fs.DurationVar(&o.ceiling, "ceiling", 5*time.Second, "also measure the health check for this long, with the same client settings (0: skip)")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", time.Minute, "how long to wait for acknowledged orders to reach the database")
	fs.DurationVar(&o.progress, "progress", time.Second, "progress line interval on stderr (0: none)")
	fs.StringVar(&o.out, "out", "", "write the JSON summary here")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write the load generator's own CPU profile here")
	fs.StringVar(&o.errorsCSV, "errors", "", "write every non-success response here as CSV (default: next to --out)")
	fs.BoolVar(&o.noVerify, "no-verify", false, "skip the invariant checks")
	fs.BoolVar(&o.tls.on, "tls", false, "reach the server over TLS (HTTPS for REST), trusting the system's CAs; implied by --tls-ca and --tls-cert")
	fs.StringVar(&o.tls.ca, "tls-ca", "", "reach the server over TLS, trusting the CA certificates in this PEM file")
	fs.StringVar(&o.tls.cert, "tls-cert", "", "client certificate (PEM) for a gRPC listener that requires one (TLS_CLIENT_CA_FILE); with --tls-key")
	fs.StringVar(&o.tls.keyFile, "tls-key", "", "the key of --tls-cert (PEM)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	switch o.transport {
	case "grpc", "rest":
	default:
		return o, fmt.Errorf("--transport must be grpc or rest, not %q", o.transport)
	}
	switch o.mode {
	case "distinct", "same-user", "status", "ceiling":
	case "mixed":
		if o.duration <= 0 {
			return o, errors.New("--mode mixed needs --duration")
		}
		if o.readRatio <= 0 || o.readRatio >= 1 {
			return o, errors.New("--read-ratio must be between 0 and 1")
		}
	default:
		return o, fmt.Errorf("--mode must be distinct, same-user, mixed, status or ceiling, not %q", o.mode)
	}
	if (o.mode == "same-user" || o.mode == "status" || o.mode == "ceiling") && o.duration <= 0 && o.requests <= 0 {
		return o, fmt.Errorf("--mode %s needs --duration or --requests", o.mode)
	}
	if o.concurrency < 1 || o.users < 1 || o.times < 1 || o.stock < 0 {
		return o, errors.New("--concurrency, --users and --times must be at least 1, --stock at least 0")
	}
	if o.mode == "mixed" && o.concurrency < 2 {
		return o, errors.New("--mode mixed needs --concurrency of at least 2")
	}
	if o.mode == "same-user" {
		o.users = 1
	}
	if o.name == "" {
		o.name = o.transport + " " + o.mode
	}
	if len(o.targets) == 0 {
		o.targets = []string{o.grpcAddr}
		if o.transport == "rest" {
			o.targets = []string{o.httpAddr}
		}
	}
	if (o.tls.cert == "") != (o.tls.keyFile == "") {
		return o, errors.New("--tls-cert and --tls-key go together")
	}
	o.tls.on = o.tls.on || o.tls.ca != "" || o.tls.cert != ""
	if o.errorsCSV == "" && o.out != "" {
		o.errorsCSV = strings.TrimSuffix(o.out, ".json") + ".errors.csv"
	}
	return o, nil
}

// run is the whole program; main only turns its error into an exit code.
func run(ctx context.Context, args []string, stdout io.Writer) (err error) {
	if len(args) > 0 && args[0] == "render" {
		return render(args[1:], stdout)
	}
	o, err := parseFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer func() {
			if cerr := f.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("cpu profile: %w", cerr))
			}
		}()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	needTarget := o.mode != "ceiling"
	verify := needTarget && !o.noVerify
	if (verify || o.jwtSecret != "") && o.databaseURL == "" {
		return errors.New("--database-url (or DATABASE_URL) is needed for the invariant checks and for minting users; or pass --no-verify")
	}

	s := &Summary{Name: o.name, Date: time.Now().UTC(), Transport: o.transport, Mode: o.mode,
		Concurrency: o.concurrency, Rate: o.rate, Times: o.times}
	s.Target = strings.Join(o.targets, ",")
	if o.transport == "rest" {
		s.Target = o.tls.scheme() + strings.Join(o.targets, ","+o.tls.scheme())
	} else {
		s.Connections = o.connections
	}

	creds, err := o.tls.credentials()
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(o.grpcAddr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return fmt.Errorf("dial %s: %w", o.grpcAddr, err)
	}
	defer conn.Close()

	var db *pgxpool.Pool
	if o.databaseURL != "" && (verify || o.jwtSecret != "" || o.productID != "") {
		db, err = pgxpool.New(ctx, o.databaseURL)
		if err != nil {
			return fmt.Errorf("database: %w", err)
		}
		defer db.Close()
	}

	var tgt target
	var before map[string]bool
	var users []user
	ordering := o.mode == "distinct" || o.mode == "same-user" || o.mode == "mixed"
	if needTarget {
		if o.productID != "" {
			if db == nil {
				return errors.New("--product needs --database-url to read its stock")
			}
			tgt, err = existingTarget(ctx, conn, db, o.productID)
		} else {
			if o.adminEmail == "" || o.adminPassword == "" {
				return errors.New("--admin-email and --admin-password (or ADMIN_EMAIL, ADMIN_PASSWORD) are needed to create the product and sale")
			}
			tgt, err = createTarget(ctx, conn, o.adminEmail, o.adminPassword, o.stock)
		}
		if err != nil {
			return err
		}
		s.ProductID, s.SaleID, s.Stock = tgt.ProductID, tgt.SaleID, tgt.Stock
		if verify {
			if before, err = baseline(ctx, db, tgt.SaleID); err != nil {
				return err
			}
		}
		if ordering {
			runID := randomID()
			t0 := time.Now()
			if o.jwtSecret != "" {
				s.Setup.UsersHow = "minted"
				users, err = mintUsers(ctx, db, o.jwtSecret, runID, o.users)
			} else {
				s.Setup.UsersHow = "registered"
				users, err = registerUsers(ctx, conn, runID, o.users, o.registerPar)
			}
			if err != nil {
				return err
			}
			s.Setup.Seconds = time.Since(t0).Seconds()
			s.Setup.PerSec = float64(len(users)) / s.Setup.Seconds
			s.Users = len(users)
			fmt.Fprintf(os.Stderr, "flashload: %d users %s in %.2fs\n", len(users), s.Setup.UsersHow, s.Setup.Seconds)
		}
	}

	// The loads of this run: one, or two for mixed.
	base := load{tls: o.tls, concurrency: o.concurrency, connections: o.connections, requests: o.requests,
		duration: o.duration, rate: o.rate, warmup: o.warmup, timeout: o.timeout, target: tgt}
	var loads []load
	var orderLoad *load
	if ordering {
		l := base
		l.op, l.rec, l.users = opOrder, newRecorder(opOrder), users
		l.tried = make([]atomic.Bool, len(users))
		l.flags = make([]atomic.Uint32, len(users))
		u := int64(len(users))
		l.pick = func(n int64) int { return int(n % u) }
		if l.requests <= 0 && o.mode != "same-user" {
			l.requests = len(users) * o.times
		}
		if o.mode == "mixed" {
			r := base
			r.op, r.rec = opStatus, newRecorder(opStatus)
			r.concurrency = max(1, min(o.concurrency-1, int(float64(o.concurrency)*o.readRatio+0.5)))
			l.concurrency = o.concurrency - r.concurrency
			if o.rate > 0 {
				r.rate = max(1, int(float64(o.rate)*o.readRatio+0.5))
				l.rate = max(1, o.rate-r.rate)
			}
			r.requests, r.warmup = 0, 0
			loads = append(loads, r)
		}
		loads = append(loads, l)
		orderLoad = &loads[len(loads)-1]
	} else {
		l := base
		l.op = opStatus
		if o.mode == "ceiling" {
			l.op = opHealth
		}
		l.rec = newRecorder(l.op)
		loads = append(loads, l)
	}

	set, err := protoset()
	if err != nil {
		return err
	}
	drive := func(l load) (time.Duration, int64, error) {
		if o.transport == "rest" {
			bases := make([]string, len(o.targets))
			for i, t := range o.targets {
				bases[i] = o.tls.scheme() + t
			}
			return runREST(ctx, bases, l)
		}
		return runGRPCFleet(o.targets, l, set)
	}

	// The load itself, with a progress line and the harness's CPU time.
	cpu0 := cpuTime()
	t0 := time.Now()
	stopProgress := progress(o.progress, t0, loads)
	stopTimeline := func() []TimePoint { return nil }
	if db != nil && needTarget && ordering {
		stopTimeline = sampleTimeline(db, tgt, t0)
	}
	type result struct {
		elapsed time.Duration
		terr    int64
		err     error
	}
	results := make([]result, len(loads))
	done := make(chan int, len(loads))
	for i, l := range loads {
		go func() {
			e, te, err := drive(l)
			results[i] = result{e, te, err}
			done <- i
		}()
	}
	for range loads {
		<-done
	}
	wall := time.Since(t0)
	stopProgress()
	cpu1 := cpuTime()
	for _, r := range results {
		if r.err != nil {
			return r.err
		}
	}
	s.Seconds = wall.Seconds()
	for i, l := range loads {
		op := l.rec.summary(results[i].elapsed, results[i].terr)
		s.Ops = append(s.Ops, op)
		s.Calls += op.Calls
	}
	s.RPS = float64(s.Calls) / s.Seconds
	s.ClientCPU.UserSeconds = (cpu1.user - cpu0.user).Seconds()
	s.ClientCPU.SystemSeconds = (cpu1.sys - cpu0.sys).Seconds()
	s.ClientCPU.CoresBusy = (s.ClientCPU.UserSeconds + s.ClientCPU.SystemSeconds) / s.Seconds

	// The ceiling: the health check with the same client settings.
	if o.mode == "ceiling" {
		c := s.Ops[0]
		s.Ceiling, s.Ratio = &c, 1
	} else if o.ceiling > 0 {
		c := base
		c.op, c.rec, c.requests, c.duration, c.warmup, c.rate = opHealth, newRecorder(opHealth), 0, o.ceiling, 0, 0
		fmt.Fprintf(os.Stderr, "flashload: measuring the ceiling (%s, %s)\n", o.transport, o.ceiling)
		e, te, err := drive(c)
		if err != nil {
			return fmt.Errorf("ceiling: %w", err)
		}
		op := c.rec.summary(e, te)
		op.Op = "ceiling"
		s.Ceiling = &op
		if op.RPS > 0 {
			s.Ratio = s.RPS / op.RPS
		}
	}

	// The invariants, once acknowledged orders have reached the database.
	if verify {
		obs := Observed{SaleID: tgt.SaleID, Stock: tgt.Stock, Tried: map[string]bool{}, Acked: map[string]string{}}
		if orderLoad != nil {
			ol := orderLoad
			ol.rec.mu.Lock()
			for id, u := range ol.rec.acked {
				obs.Acked[id] = u
			}
			ol.rec.mu.Unlock()
			if o.transport == "rest" {
				obs.Rejected = map[string]bool{}
			}
			for i := range ol.tried {
				if !ol.tried[i].Load() {
					continue
				}
				obs.Tried[users[i].ID] = true
				if obs.Rejected != nil && ol.flags[i].Load() == flagRefused {
					obs.Rejected[users[i].ID] = true
				}
			}
			obs.Ambiguous = int(ol.rec.ambiguous.Load())
			obs.Throttled = int(ol.rec.throttled.Load())
		}
		d, waited, err := drain(ctx, db, tgt, before, obs.Acked, o.drainTimeout)
		if err != nil {
			return err
		}
		s.Verify.Checked = true
		s.Verify.DrainSeconds = waited.Seconds()
		s.Verify.OrdersInDB = len(d.Orders)
		s.Verify.Remaining = d.Remaining
		s.Verify.UsersTried = len(obs.Tried)
		s.Verify.Acknowledged = len(obs.Acked)
		s.Verify.PersistedPerSe = float64(len(d.Orders)) / (wall + waited).Seconds()
		s.Verify.Violations = check(obs, d)
	}
	if s.Verify.Violations == nil {
		s.Verify.Violations = []Violation{}
	}
	s.Timeline = stopTimeline()

	s.print(stdout)
	if o.out != "" {
		if err := writeJSON(o.out, s); err != nil {
			return err
		}
	}
	if o.errorsCSV != "" {
		recs := make([]*recorder, 0, len(loads))
		for _, l := range loads {
			recs = append(recs, l.rec)
		}
		if err := writeFailuresCSV(o.errorsCSV, recs...); err != nil {
			return err
		}
	}
	if n := len(s.Verify.Violations); n > 0 {
		msgs := make([]string, n)
		for i, v := range s.Verify.Violations {
			msgs[i] = v.String()
		}
		return fmt.Errorf("%d invariant violations:\n%s", n, strings.Join(msgs, "\n"))
	}
	return nil
}

// progress prints a line every interval until the returned func is called.
func progress(every time.Duration, start time.Time, loads []load) (stop func()) {
	if every <= 0 {
		return func() {}
	}
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				el := time.Since(start)
				parts := make([]string, 0, len(loads))
				for _, l := range loads {
					r := l.rec
					parts = append(parts, fmt.Sprintf("%s %d calls (ok %d, refused %d, shed %d, unknown %d) %.0f/s",
						r.op, r.calls.Load(), r.ok.Load(), r.rejected.Load(), r.throttled.Load(), r.ambiguous.Load(),
						float64(r.calls.Load())/el.Seconds()))
				}
				fmt.Fprintf(os.Stderr, "flashload: %5.1fs  %s\n", el.Seconds(), strings.Join(parts, " | "))
			}
		}
	}()
	return func() { close(quit); <-finished }
}

type cpu struct{ user, sys time.Duration }

// cpuTime is the harness's own CPU time so far.
func cpuTime() cpu {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpu{}
	}
	return cpu{user: time.Duration(ru.Utime.Nano()), sys: time.Duration(ru.Stime.Nano())}
}

func randomID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
