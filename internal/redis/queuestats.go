package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"
)

// StreamStats is where one product's order stream stands (queue mode).
type StreamStats struct {
	ProductID uuid.UUID
	// Length is the entries in the stream: orders admitted and not yet
	// settled (XLEN).
	Length int64
	// Lag is the entries no worker has read yet; Pending those read and
	// not yet settled (the consumer group's lag and pending).
	Lag, Pending int64
	// Oldest is the age of the oldest entry, the order waiting longest
	// for its write; zero when the stream is empty.
	Oldest time.Duration
	// Consumers are the workers that ever read the stream.
	Consumers []ConsumerStats
}

// ConsumerStats is one worker's standing in a stream's consumer group.
type ConsumerStats struct {
	Name string
	// Pending is the entries it read and has not settled.
	Pending int64
	// Idle is how long since it last read or claimed an entry.
	Idle time.Duration
}

// Stats reads every registered stream's standing, for metrics: a few
// commands per stream, none of them blocking or long.
func (q *Queue) Stats(ctx context.Context) ([]StreamStats, error) {
	keys, err := q.c.rc.Do(ctx, q.c.rc.B().Smembers().Key(q.c.streamsKey()).Build()).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("queue stats: %w", err)
	}
	out := make([]StreamStats, 0, len(keys))
	now := time.Now()
	for _, k := range keys {
		id, ok := productOfStream(k)
		if !ok {
			continue
		}
		st := StreamStats{ProductID: id}
		res := q.c.rc.DoMulti(ctx,
			q.c.rc.B().Xlen().Key(k).Build(),
			q.c.rc.B().Xrange().Key(k).Start("-").End("+").Count(1).Build(),
			q.c.rc.B().XinfoGroups().Key(k).Build(),
			q.c.rc.B().XinfoConsumers().Key(k).Group(Group).Build(),
		)
		if st.Length, err = res[0].AsInt64(); err != nil {
			return nil, fmt.Errorf("queue stats %s: %w", k, err)
		}
		if first, err := res[1].AsXRange(); err == nil && len(first) > 0 {
			if ms, err := strconv.ParseInt(strings.SplitN(first[0].ID, "-", 2)[0], 10, 64); err == nil {
				st.Oldest = max(0, now.Sub(time.UnixMilli(ms)))
			}
		}
		// A stream without its group yet (no worker prepared it) has no
		// lag or consumers to show: XINFO answers an error then.
		if groups, err := res[2].ToArray(); err == nil {
			for _, g := range groups {
				m, err := g.AsMap()
				if err != nil || str(m["name"]) != Group {
					continue
				}
				st.Pending = integer(m["pending"])
				st.Lag = integer(m["lag"])
			}
		}
		if consumers, err := res[3].ToArray(); err == nil {
			for _, c := range consumers {
				m, err := c.AsMap()
				if err != nil {
					continue
				}
				st.Consumers = append(st.Consumers, ConsumerStats{
					Name:    str(m["name"]),
					Pending: integer(m["pending"]),
					Idle:    time.Duration(integer(m["idle"])) * time.Millisecond,
				})
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// productOfStream reads the product id out of a stream key
// (<prefix>:{p:<id>}:stream).
func productOfStream(key string) (uuid.UUID, bool) {
	_, rest, ok := strings.Cut(key, "{p:")
	if !ok {
		return uuid.Nil, false
	}
	idText, _, ok := strings.Cut(rest, "}")
	if !ok {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(idText)
	return id, err == nil
}

func str(m rueidis.RedisMessage) string {
	s, _ := m.ToString()
	return s
}

// integer is an integer field of an XINFO reply; 0 when absent or nil (a
// lag Redis cannot tell).
func integer(m rueidis.RedisMessage) int64 {
	n, _ := m.AsInt64()
	return n
}
