package redis

import (
	"errors"
	"strings"

	"github.com/redis/rueidis"
)

// IsTransient reports whether err is Redis answering that it cannot serve
// the command right now, though nothing is wrong with the command, so the
// caller may retry shortly: loading its dataset after a restart (LOADING), a
// script running too long (BUSY), a replica cut off from its master
// (MASTERDOWN), a write sent to a replica after a failover (READONLY), too
// few replicas for min-replicas-to-write (NOREPLICAS), or a cluster between
// states (TRYAGAIN, CLUSTERDOWN). Errors wrapped around such an answer count.
func IsTransient(err error) bool {
	var re *rueidis.RedisError
	if !errors.As(err, &re) || re.IsNil() {
		return false
	}
	// The error code is the answer's first word; BUSYGROUP and BUSYKEY are
	// not BUSY.
	code, _, _ := strings.Cut(re.Error(), " ")
	switch code {
	case "LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN", "READONLY", "NOREPLICAS":
		return true
	}
	return false
}
