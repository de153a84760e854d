package redis

import (
	"context"
	"fmt"
)

// AppendOnly reports whether Redis writes an append-only file, which queue
// mode needs so that a Redis restart keeps the queued orders.
func (c *Client) AppendOnly(ctx context.Context) (bool, error) {
	kv, err := c.rc.Do(ctx, c.rc.B().ConfigGet().Parameter("appendonly").Build()).AsStrMap()
	if err != nil {
		return false, fmt.Errorf("redis config get appendonly: %w", err)
	}
	return kv["appendonly"] == "yes", nil
}
