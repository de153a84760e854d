// Package clustertest starts a private Redis Cluster for tests: six
// redis-server processes (three masters, three replicas) from the installed
// binaries, each with an append-only file in a temporary directory, on
// random ports below Linux's ephemeral range, killed when the test ends.
// Tests that kill a master get its replica promoted by the cluster itself,
// as in production (cluster-node-timeout 2 s).
package clustertest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/flashsale/flashsale/internal/testenv"
)

// NodeTimeout is the cluster-node-timeout of the nodes: how long a master
// must be unreachable before its replica is promoted.
const NodeTimeout = 2 * time.Second

// Cluster is a private Redis Cluster of three masters, each with one replica.
type Cluster struct {
	t     testing.TB
	bin   string
	Nodes []*Node
}

// Node is one redis-server of the cluster. Kill and Restart it through the
// Cluster.
type Node struct {
	Port int
	dir  string
	log  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the running process has exited
}

// Addr is the node's host:port.
func (n *Node) Addr() string { return "127.0.0.1:" + strconv.Itoa(n.Port) }

// Start starts a six-node cluster and waits until every slot is served and
// every master has its replica in sync. It skips the test (fails it under
// CI=true) when redis-server or redis-cli is missing.
func Start(t testing.TB) *Cluster {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Missing(t, "redis-server not installed (apt-get install redis-server): %v", err)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		testenv.Missing(t, "redis-cli not installed (apt-get install redis-tools): %v", err)
	}
	c := &Cluster{t: t, bin: bin}
	root := t.TempDir()
	ports := freePorts(t, 6)
	for _, p := range ports {
		n := &Node{Port: p, dir: filepath.Join(root, strconv.Itoa(p))}
		n.log = filepath.Join(n.dir, "redis.log")
		if err := os.MkdirAll(n.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		c.Nodes = append(c.Nodes, n)
	}
	t.Cleanup(c.stopAll)
	for _, n := range c.Nodes {
		if err := c.start(n); err != nil {
			t.Fatalf("clustertest: %v", err)
		}
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.Nodes {
		args = append(args, n.Addr())
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("clustertest: redis-cli --cluster create: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatalf("clustertest: cluster not healthy after creation: %v\n%s", err, c.Logs(20))
	}
	return c
}

// freePorts picks n ports in 21000-29999 whose cluster bus ports (port -
// 10000) are free too: both stay below Linux's ephemeral range, so a node
// restarted on them never finds them taken by a connection's local end.
func freePorts(t testing.TB, n int) []int {
	var ports []int
	for range 10000 {
		if len(ports) == n {
			return ports
		}
		p := 21000 + rand.IntN(9000)
		if slices.Contains(ports, p) || !free(p) || !free(p-10000) {
			continue
		}
		ports = append(ports, p)
	}
	t.Fatalf("clustertest: no %d free ports in 21000-29999", n)
	return nil
}

func free(port int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// URL is the cluster's address as REDIS_URL takes it: every node, so a
// client finds the cluster whichever nodes are up.
func (c *Cluster) URL() string {
	u := "redis://" + c.Nodes[0].Addr()
	for i, n := range c.Nodes[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + n.Addr()
	}
	return u
}

// start runs the node's redis-server and waits until it answers PING.
func (c *Cluster) start(n *Node) error {
	cmd := exec.Command(c.bin,
		"--port", strconv.Itoa(n.Port), "--bind", "127.0.0.1",
		"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", strconv.Itoa(int(NodeTimeout/time.Millisecond)),
		"--cluster-port", strconv.Itoa(n.Port-10000),
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
		// A replica that rejoins gets a full sync at once rather than 5 s
		// later (the default waits for more replicas to share one).
		"--repl-diskless-sync-delay", "0",
		"--dir", n.dir, "--logfile", n.log, "--daemonize", "no")
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server on %d: %w", n.Port, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := ping(n.Addr())
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server on %d exited while starting: %s", n.Port, tail(n.log, 10))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %d not answering after 30s: %v", n.Port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill sends the node SIGKILL (kill -9) and waits for it to exit.
func (c *Cluster) Kill(n *Node) {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// Restart starts a killed node again with its data and cluster
// configuration, and waits until it answers: a master that was failed over
// rejoins as a replica. It returns the error rather than failing the test,
// so that goroutines other than the test's may call it.
func (c *Cluster) Restart(n *Node) error {
	if err := c.start(n); err != nil {
		return fmt.Errorf("clustertest: %w", err)
	}
	return nil
}

// Alive reports whether the node's process runs.
func (n *Node) Alive() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

func (c *Cluster) stopAll() {
	for _, n := range c.Nodes {
		c.Kill(n)
	}
}

// Node is the node listening on addr (host:port), or nil.
func (c *Cluster) Node(addr string) *Node {
	for _, n := range c.Nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// client is a plain connection to one node, never following the cluster.
func client(addr string) (rueidis.Client, error) {
	return rueidis.NewClient(rueidis.ClientOption{
		InitAddress: []string{addr}, ForceSingleClient: true, DisableCache: true,
		DisableRetry: true, Dialer: net.Dialer{Timeout: time.Second},
		ConnWriteTimeout: time.Second,
	})
}

// Do runs one command on the node (not following the cluster) and returns
// its reply.
func (n *Node) Do(ctx context.Context, args ...string) rueidis.RedisResult {
	rc, err := client(n.Addr())
	if err != nil {
		return rueidis.NewErrorResult(err)
	}
	defer rc.Close()
	return rc.Do(ctx, rc.B().Arbitrary(args[0]).Args(args[1:]...).Build())
}

// Info is one INFO section of the node as field -> value.
func (n *Node) Info(ctx context.Context, section string) (map[string]string, error) {
	s, err := n.Do(ctx, "INFO", section).ToString()
	if err != nil {
		return nil, err
	}
	kv := map[string]string{}
	for line := range strings.Lines(s) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			kv[k] = v
		}
	}
	return kv, nil
}

// Shard is a range of slots and the node serving it as master.
type Shard struct {
	From, To uint16
	Master   string // host:port
	Replicas []string
}

// Shards is the slot map as a live node sees it (CLUSTER SLOTS), asking the
// nodes in turn until one answers.
func (c *Cluster) Shards(ctx context.Context) ([]Shard, error) {
	var last error
	for _, n := range c.Nodes {
		if !n.Alive() {
			continue
		}
		msgs, err := n.Do(ctx, "CLUSTER", "SLOTS").ToArray()
		if err != nil {
			last = err
			continue
		}
		var out []Shard
		for _, m := range msgs {
			e, err := m.ToArray()
			if err != nil || len(e) < 3 {
				return nil, fmt.Errorf("CLUSTER SLOTS: unexpected entry")
			}
			from, _ := e[0].AsInt64()
			to, _ := e[1].AsInt64()
			s := Shard{From: uint16(from), To: uint16(to)}
			for i, node := range e[2:] {
				f, err := node.ToArray()
				if err != nil || len(f) < 2 {
					return nil, fmt.Errorf("CLUSTER SLOTS: unexpected node")
				}
				host, _ := f[0].ToString()
				port, _ := f[1].AsInt64()
				addr := net.JoinHostPort(host, strconv.FormatInt(port, 10))
				if i == 0 {
					s.Master = addr
				} else {
					s.Replicas = append(s.Replicas, addr)
				}
			}
			out = append(out, s)
		}
		return out, nil
	}
	if last == nil {
		last = errors.New("no node alive")
	}
	return nil, last
}

// MasterOf is the node serving slot as master, as a live node sees it.
func (c *Cluster) MasterOf(ctx context.Context, slot uint16) (*Node, error) {
	shards, err := c.Shards(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range shards {
		if s.From <= slot && slot <= s.To {
			if n := c.Node(s.Master); n != nil {
				return n, nil
			}
			return nil, fmt.Errorf("slot %d: master %s is not one of ours", slot, s.Master)
		}
	}
	return nil, fmt.Errorf("slot %d: not served", slot)
}

// Masters are the nodes serving slots as masters, as a live node sees it.
func (c *Cluster) Masters(ctx context.Context) ([]*Node, error) {
	shards, err := c.Shards(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Node
	for _, s := range shards {
		if n := c.Node(s.Master); n != nil && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// WaitHealthy waits until every live node says cluster_state:ok, every slot
// is served by a live master, and every master has a replica online that
// acknowledged its stream within the last second (so WAIT 1 succeeds).
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	var last error
	for {
		if last = c.healthy(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w; last: %v", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) healthy(ctx context.Context) error {
	alive := 0
	for _, n := range c.Nodes {
		if n.Alive() {
			alive++
		}
	}
	for _, n := range c.Nodes {
		if !n.Alive() {
			continue
		}
		s, err := n.Do(ctx, "CLUSTER", "INFO").ToString()
		if err != nil {
			return fmt.Errorf("%s: %w", n.Addr(), err)
		}
		if !strings.Contains(s, "cluster_state:ok") {
			return fmt.Errorf("%s: cluster_state not ok", n.Addr())
		}
		// Every node knows every live replica as one (gossip has spread).
		s, err = n.Do(ctx, "CLUSTER", "NODES").ToString()
		if err != nil {
			return fmt.Errorf("%s: %w", n.Addr(), err)
		}
		replicas := 0
		for line := range strings.Lines(s) {
			if f := strings.Fields(line); len(f) > 3 && f[3] != "-" && !strings.Contains(f[2], "fail") {
				replicas++
			}
		}
		if replicas != alive-3 {
			return fmt.Errorf("%s: knows %d replicas, want %d", n.Addr(), replicas, alive-3)
		}
	}
	shards, err := c.Shards(ctx)
	if err != nil {
		return err
	}
	covered := 0
	for _, s := range shards {
		covered += int(s.To) - int(s.From) + 1
		m := c.Node(s.Master)
		if m == nil || !m.Alive() {
			return fmt.Errorf("slots %d-%d: master %s down", s.From, s.To, s.Master)
		}
		kv, err := m.Info(ctx, "replication")
		if err != nil {
			return fmt.Errorf("%s: %w", m.Addr(), err)
		}
		if kv["role"] != "master" {
			return fmt.Errorf("%s: role %s, not master yet", m.Addr(), kv["role"])
		}
		synced := false
		for i := 0; ; i++ {
			line, ok := kv["slave"+strconv.Itoa(i)]
			if !ok {
				break
			}
			// slave0:ip=...,port=...,state=online,offset=...,lag=0
			if strings.Contains(line, "state=online") && (strings.HasSuffix(line, "lag=0") || strings.HasSuffix(line, "lag=1")) {
				synced = true
			}
		}
		if !synced {
			return fmt.Errorf("%s: no replica online and caught up", m.Addr())
		}
	}
	if covered != 16384 {
		return fmt.Errorf("%d slots served, want 16384", covered)
	}
	return nil
}

// WaitFailover waits until slot is served by a live master other than
// old, and returns it.
func (c *Cluster) WaitFailover(ctx context.Context, slot uint16, old *Node) (*Node, error) {
	for {
		m, err := c.MasterOf(ctx, slot)
		if err == nil && m != old && m.Alive() {
			if kv, err := m.Info(ctx, "replication"); err == nil && kv["role"] == "master" {
				return m, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("slot %d still not failed over from %s: %w", slot, old.Addr(), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Logs is the last lines of every node's log, for a failure message.
func (c *Cluster) Logs(lines int) string {
	var b strings.Builder
	for _, n := range c.Nodes {
		fmt.Fprintf(&b, "--- %s:\n%s\n", n.Addr(), tail(n.log, lines))
	}
	return b.String()
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(ls[max(0, len(ls)-lines):], "\n")
}

// ping is a PING over a fresh connection: nil on PONG.
func ping(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	rc, err := client(addr)
	if err != nil {
		return err
	}
	defer rc.Close()
	return rc.Do(ctx, rc.B().Ping().Build()).Error()
}
