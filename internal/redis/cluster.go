package redis

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/redis/rueidis"
)

// shard is a range of slots and who serves it, as CLUSTER SLOTS tells.
type shard struct {
	from, to uint16
	master   string // host:port
	masterID string // the node's cluster id
	replicas []string
}

// shards reads the slot map (CLUSTER SLOTS) from the first node that
// answers: after a failover some of the nodes the client knows are dead.
func (c *Client) shards(ctx context.Context) ([]shard, error) {
	var errs []error
	for addr, n := range c.rc.Nodes() {
		msgs, err := n.Do(ctx, n.B().ClusterSlots().Build()).ToArray()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}
		return parseShards(msgs)
	}
	return nil, fmt.Errorf("redis cluster slots: %w", errors.Join(errs...))
}

func parseShards(msgs []rueidis.RedisMessage) ([]shard, error) {
	out := make([]shard, 0, len(msgs))
	for _, m := range msgs {
		e, err := m.ToArray()
		if err != nil || len(e) < 3 {
			return nil, errors.New("redis cluster slots: unexpected entry")
		}
		from, err1 := e[0].AsInt64()
		to, err2 := e[1].AsInt64()
		if err1 != nil || err2 != nil || from < 0 || to >= Slots || from > to {
			return nil, errors.New("redis cluster slots: unexpected range")
		}
		s := shard{from: uint16(from), to: uint16(to)}
		for i, node := range e[2:] {
			f, err := node.ToArray()
			if err != nil || len(f) < 3 {
				return nil, errors.New("redis cluster slots: unexpected node")
			}
			host, _ := f[0].ToString()
			port, _ := f[1].AsInt64()
			id, _ := f[2].ToString()
			addr := net.JoinHostPort(host, strconv.FormatInt(port, 10))
			if i == 0 {
				s.master, s.masterID = addr, id
			} else {
				s.replicas = append(s.replicas, addr)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// node is the client of one cluster node, or nil when the client does not
// know it (yet).
func (c *Client) node(addr string) rueidis.Client {
	return c.rc.Nodes()[addr]
}

// Moved is a set of slots whose data may have changed behind the
// application's back: their master changed (a failover, a migration) or
// restarted. Keys of a product live in ProductSlot(id).
type Moved struct {
	bits [Slots / 64]uint64
}

// AllSlots is every slot: a single Redis that restarted.
func AllSlots() *Moved {
	m := &Moved{}
	for i := range m.bits {
		m.bits[i] = ^uint64(0)
	}
	return m
}

func (m *Moved) add(slot uint16) { m.bits[slot/64] |= 1 << (slot % 64) }

// Has reports whether slot is in the set.
func (m *Moved) Has(slot uint16) bool { return m.bits[slot/64]&(1<<(slot%64)) != 0 }

// Product reports whether the product's keys are in the set.
func (m *Moved) Product(id uuid.UUID) bool { return m.Has(ProductSlot(id)) }

// Len is the number of slots in the set.
func (m *Moved) Len() int {
	n := 0
	for _, b := range m.bits {
		n += bits.OnesCount64(b)
	}
	return n
}

func (m *Moved) merge(o *Moved) {
	for i := range m.bits {
		m.bits[i] |= o.bits[i]
	}
}

// topology is, for every slot, who serves it: "<master id>/<master run_id>";
// "" where that could not be read.
type topology [Slots]string

// readTopology reads who serves each slot now. A slot whose master could not
// be read (no node answered for it, its INFO failed) keeps what prev said,
// so that a failed read is never taken for a change.
func (c *Client) readTopology(ctx context.Context, prev *topology) (*topology, error) {
	shards, err := c.shards(ctx)
	if err != nil {
		return nil, err
	}
	t := &topology{}
	if prev != nil {
		*t = *prev
	}
	runIDs := map[string]string{}
	for _, s := range shards {
		id, ok := runIDs[s.master]
		if !ok {
			if n := c.node(s.master); n != nil {
				id, _ = nodeRunID(ctx, n)
			}
			runIDs[s.master] = id
		}
		if id == "" {
			continue
		}
		fp := s.masterID + "/" + id
		for slot := int(s.from); slot <= int(s.to); slot++ {
			t[slot] = fp
		}
	}
	return t, nil
}

// diff adds to m the slots whose server changed between t and prev.
func (t *topology) diff(prev *topology, m *Moved) {
	for slot := range t {
		if prev[slot] != "" && t[slot] != "" && t[slot] != prev[slot] {
			m.add(uint16(slot))
		}
	}
}

func nodeRunID(ctx context.Context, n rueidis.Client) (string, error) {
	kv, err := infoOf(ctx, n, "server")
	if err != nil {
		return "", err
	}
	return kv["run_id"], nil
}

// infoOf reads one INFO section of one server as field -> value.
func infoOf(ctx context.Context, n rueidis.Client, section string) (map[string]string, error) {
	s, err := n.Do(ctx, n.B().Info().Section(section).Build()).ToString()
	if err != nil {
		return nil, fmt.Errorf("redis info %s: %w", section, err)
	}
	kv := map[string]string{}
	for line := range strings.Lines(s) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			kv[k] = v
		}
	}
	return kv, nil
}
