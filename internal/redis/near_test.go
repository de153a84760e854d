package redis

import (
	"testing"
	"time"

	"github.com/redis/rueidis"
)

// TestNearCache: values are kept until Redis invalidates their key, all of
// them on an invalidation of everything (a lost connection), and a value
// read before an invalidation that arrived since is not kept at all.
func TestNearCache(t *testing.T) {
	var n nearCache
	none := rueidis.RedisResult{} // rueidis gave no expiry: the TTL holds
	n.put("a", 1, none, time.Minute, n.start())
	n.put("b", 2, none, time.Minute, n.start())
	if v, ok := n.get("a"); !ok || v != 1 {
		t.Fatalf("get(a) = %v, %v; want 1, true", v, ok)
	}

	n.drop([]string{"a"}, false)
	if _, ok := n.get("a"); ok {
		t.Errorf("get(a) after its invalidation hit")
	}
	if _, ok := n.get("b"); !ok {
		t.Errorf("an invalidation of a dropped b too")
	}

	n.invalidate(nil) // what rueidis says when a connection is lost
	if _, ok := n.get("b"); ok {
		t.Errorf("get(b) after invalidating everything hit")
	}

	epoch := n.start()
	n.invalidate(nil) // arrives while the read is in flight
	n.put("a", 3, none, time.Minute, epoch)
	if _, ok := n.get("a"); ok {
		t.Errorf("a value read before an invalidation was kept")
	}

	n.put("c", 4, none, time.Nanosecond, n.start())
	time.Sleep(time.Millisecond)
	if _, ok := n.get("c"); ok {
		t.Errorf("an expired value was served")
	}
}
