package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/postgres/pgtest"
	"github.com/flashsale/flashsale/internal/testenv"
)

// TestREADME runs the README's shell blocks marked `<!-- readme-test: NAME -->`
// the way a newcomer would: the walk-through against a server started as
// `make run` starts one (demo seeded, dev mode, default rate limits), twice,
// each time after a fresh demo and start, and the load-testing block against
// one started as `make run-bench-server` does, twice. The blocks run as
// written but for the addresses (each test server has its own ports,
// database and Redis key prefix) and the load sizes, which are lowered.
// Stopping each server with SIGINT must end it with exit status 0, as Ctrl-C
// on `make run` does.
func TestREADME(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq", "make", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, "%s not installed; the README's commands need it", tool)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(t, filepath.Join(root, "README.md"))

	bin := filepath.Join(t.TempDir(), "flashsale")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	httpAddr, grpcAddr := freeAddr(t), freeAddr(t)
	env := readmeEnv(map[string]string{
		"DATABASE_URL":     pgtest.NewDatabase(t),
		"REDIS_URL":        testRedisURL(t),
		"REDIS_KEY_PREFIX": "fsreadme-" + fmt.Sprint(time.Now().UnixNano()),
		"HTTP_ADDR":        httpAddr,
		"GRPC_ADDR":        grpcAddr,
		"ADMIN_EMAIL":      demoAdminEmail,
		"ADMIN_PASSWORD":   demoAdminPassword,
	})
	addrs := []string{"localhost:8080", httpAddr, "localhost:9090", grpcAddr}

	// As `make run`: demo, then serve in dev mode with the default limits.
	walk := rewrite(t, blocks["walkthrough-rest"], addrs...)
	grpcWalk := rewrite(t, blocks["walkthrough-grpc"], addrs...)
	var seeded string
	devEnv := append(env[:len(env):len(env)], "FLASHSALE_DEV=true")
	for round := 1; round <= 2; round++ {
		out, err := runCmd(root, devEnv, bin, "demo")
		if err != nil {
			t.Fatalf("round %d: flashsale demo: %v\n%s", round, err, out)
		}
		product := regexp.MustCompile(`(?m)^  PRODUCT=(\S+)$`).FindStringSubmatch(out)
		if product == nil {
			t.Fatalf("round %d: demo printed no PRODUCT= line:\n%s", round, out)
		}
		if round == 1 {
			seeded = product[1]
			// The sale list is cached per whole second (internal/redis
			// Catalog.SaleList), so a sale that opened within the current
			// second is not yet listed as active; a person takes longer
			// than that to paste the first line.
			time.Sleep(1100 * time.Millisecond)
		} else if product[1] != seeded || !strings.Contains(out, "already seeded") {
			t.Errorf("round 2: demo seeded again (PRODUCT=%s, first %s):\n%s", product[1], seeded, out)
		}

		stop := startReadmeServer(t, bin, devEnv, httpAddr)
		// The blocks share a shell, as they share the reader's terminal.
		out, err = runScript(t, root, env, "set -euo pipefail\n"+walk+"\nset +e\n"+grpcWalk+
			"\nprintf 'PRODUCT=%s\\nTOKEN=%s\\n' \"$PRODUCT\" \"$TOKEN\"\n")
		if err != nil {
			t.Errorf("round %d: the walk-through failed: %v\n%s", round, err, out)
		}
		for _, want := range []string{
			"PRODUCT=" + seeded + "\n",
			`"state": "SALE_STATE_ACTIVE"`,
			`"status": "ORDER_STATUS_CONFIRMED"`,
			`"secured": true`,
			"flashsale.v1.OrderService\n",
			"AlreadyExists",
			"ALREADY_ORDERED",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("round %d: the walk-through's output lacks %q:\n%s", round, want, out)
			}
		}
		for _, bad := range []string{"TOKEN=null", "TOKEN=\n", "command not found", "parse error"} {
			if strings.Contains(out, bad) {
				t.Errorf("round %d: the walk-through's output has %q:\n%s", round, bad, out)
			}
		}
		stop()
	}

	// As `make run-bench-server`: no limits, errors-only log, the Makefile's fixed key.
	secret := benchSecret(t, filepath.Join(root, "Makefile"))
	load := rewrite(t, blocks["load"], append(addrs,
		"--stock 1000 --users 20000 --concurrency 100",
		"--stock 50 --users 200 --concurrency 10 --ceiling 300ms --progress 0 --grpc "+grpcAddr+" --http "+httpAddr,
		"-c 100 -z 10s", "-c 5 -z 1s",
		"-c 100 -n 20000", "-c 5 -n 100",
	)...)
	benchEnv := append(env[:len(env):len(env)], "RL_DISABLED=true", "LOG_LEVEL=error", "AUTH_JWT_SECRET="+secret)
	stop := startReadmeServer(t, bin, benchEnv, httpAddr)
	defer stop()
	for round := 1; round <= 2; round++ {
		out, err := runScript(t, root, env, "set -euo pipefail\n"+load)
		if err != nil {
			t.Errorf("round %d: the load-testing block failed: %v\n%s", round, err, out)
			continue
		}
		for _, want := range []string{"invariants: all hold", "Summary:", "[OK]", "[AlreadyExists]"} {
			if !strings.Contains(out, want) {
				t.Errorf("round %d: the load-testing block's output lacks %q:\n%s", round, want, out)
			}
		}
		if strings.Contains(out, "ResourceExhausted") {
			t.Errorf("round %d: rate limited under run-bench-server's settings:\n%s", round, out)
		}
	}
}

// readmeBlocks returns the README's ```sh blocks that follow a
// `<!-- readme-test: NAME -->` line, by name.
func readmeBlocks(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	marker := regexp.MustCompile(`^<!-- readme-test: ([a-z-]+) -->$`)
	blocks := map[string]string{}
	var name string
	var body []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case in && line == "```":
			blocks[name], in, name = strings.Join(body, "\n")+"\n", false, ""
		case in:
			body = append(body, line)
		case name != "" && line == "```sh":
			in, body = true, nil
		case name != "":
			t.Fatalf("README: %q marker not followed by a ```sh block", name)
		default:
			if m := marker.FindStringSubmatch(line); m != nil {
				name = m[1]
			}
		}
	}
	for _, want := range []string{"walkthrough-rest", "walkthrough-grpc", "load"} {
		if blocks[want] == "" {
			t.Fatalf("README has no block marked <!-- readme-test: %s -->", want)
		}
	}
	return blocks
}

// rewrite replaces each old with its new (pairs), failing when an old no
// longer appears: then the README changed, and so must this test.
func rewrite(t *testing.T, s string, pairs ...string) string {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			continue
		}
		s = strings.ReplaceAll(s, pairs[i], pairs[i+1])
	}
	for i := 4; i+1 < len(pairs); i += 2 { // past the addresses, which a block may not use
		if strings.Contains(s, pairs[i]) || !strings.Contains(s, pairs[i+1]) {
			t.Fatalf("README block no longer contains %q; update TestREADME:\n%s", pairs[i], s)
		}
	}
	return s
}

// readmeEnv is the process environment without any setting flashsale reads
// (nor the README's own shell variables), plus set.
func readmeEnv(set map[string]string) []string {
	drop := map[string]bool{"PRODUCT": true, "TOKEN": true, "EMAIL": true}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[config.Config]()) {
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		drop[name], drop[name+"_FILE"] = true, true
	}
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !drop[k] {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

func runCmd(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func runScript(t *testing.T, dir string, env []string, script string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// startReadmeServer runs `flashsale serve` until the returned stop, which
// sends SIGINT (Ctrl-C) and expects a clean exit.
func startReadmeServer(t *testing.T, bin string, env []string, httpAddr string) (stop func()) {
	t.Helper()
	var log bytes.Buffer
	cmd := exec.Command(bin, "serve")
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case err := <-done:
				var exit *exec.ExitError
				if errors.As(err, &exit) {
					t.Errorf("serve exited with %v on SIGINT, want status 0; its log:\n%s", err, log.String())
				}
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				t.Errorf("serve did not stop within 30 s of SIGINT")
			}
		})
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return stop
			}
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited before it was ready: %v\n%s", err, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready after 30 s:\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// benchSecret is the Makefile's BENCH_JWT_SECRET, the key `make bench-env`
// prints and `make run-bench-server` serves with.
func benchSecret(t *testing.T, makefile string) string {
	t.Helper()
	b, err := os.ReadFile(makefile)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^BENCH_JWT_SECRET \?= (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("Makefile sets no BENCH_JWT_SECRET")
	}
	return string(m[1])
}
