package redis_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/redis"
)

// TestSlot: the values Redis's CLUSTER KEYSLOT gives, hash tags included.
func TestSlot(t *testing.T) {
	for _, tt := range []struct {
		key  string
		want uint16
	}{
		{"", 0},
		{"123456789", 12739}, // the CRC16/XMODEM check value 0x31C3, mod 16384
		{"foo", 12182},
		{"{user1000}.following", 3443},
		{"{user1000}.followers", 3443},
		{"foo{}{bar}", 8363}, // an empty tag: the whole key
		{"foo{{bar}}zap", 4015},
		{"foo{bar}{zap}", 5061}, // the first tag: "bar"
	} {
		if got := redis.Slot(tt.key); got != tt.want {
			t.Errorf("Slot(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}
	id := uuid.MustParse("0195c0de-0000-7000-8000-000000000001")
	if got, want := redis.ProductSlot(id), redis.Slot("fs:{p:"+id.String()+"}:stock"); got != want {
		t.Errorf("ProductSlot = %d, want the slot of its keys, %d", got, want)
	}
}
