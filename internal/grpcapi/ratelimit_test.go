package grpcapi

import (
	"fmt"
	"testing"
)

// TestBucketsBounded: however many addresses call, the table holds at most
// its size; the least recently used address is the one forgotten, and an
// address in use keeps its (drained) bucket.
func TestBucketsBounded(t *testing.T) {
	const size = 1000
	b := newBuckets(size, 5, 1)
	hot := b.get("192.0.2.1")
	for range 5 {
		if !hot.Allow() {
			t.Fatal("a fresh bucket of 5 refused one of its first 5 calls")
		}
	}
	for i := range 3 * size {
		b.get(fmt.Sprintf("10.0.%d.%d", i>>8&255, i&255))
		if i%100 == 0 {
			b.get("192.0.2.1") // keeps calling
		}
	}
	if n := b.len(); n > size {
		t.Errorf("table holds %d buckets after %d addresses, want at most %d", n, 3*size+1, size)
	}
	if b.get("192.0.2.1") != hot {
		t.Error("an address calling all along lost its bucket, so it got a full one back")
	}
	if hot.Allow() {
		t.Error("the drained bucket of an address in use allowed a call")
	}
}

// BenchmarkBucketsNewAddress: a lookup with a full table costs the same as
// with an empty one (the old table scanned every entry when full).
func BenchmarkBucketsNewAddress(b *testing.B) {
	t := newBuckets(ipTableSize, 200, 50)
	for i := 0; b.Loop(); i++ {
		t.get(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
	}
}
