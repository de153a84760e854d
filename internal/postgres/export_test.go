package postgres

import (
	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/auth"
)

// ConstraintNames lists the constraints interpretError maps, so the tests can
// check that the migrations still define them.
func ConstraintNames() []string {
	names := make([]string, 0, len(constraintErrors))
	for v := range constraintErrors {
		names = append(names, v.constraint)
	}
	return names
}

// DirectoryLookup is what the in-memory user directory answers for id,
// without falling back to the table: ok is false when it is not current or
// does not hold id.
func DirectoryLookup(s *Store, id uuid.UUID) (auth.Standing, bool) {
	return s.directory.lookup(id)
}

// DirectoryCurrent reports whether the directory is trusted right now.
func DirectoryCurrent(s *Store) bool { return s.directory.current() }

// OnHeartbeatDone makes the directory call f as each of its heartbeat
// goroutines ends (before FollowUsers starts).
func OnHeartbeatDone(s *Store, f func()) { s.directory.heartbeatDone = f }
