package postgres

// ConstraintNames lists the constraints interpretError maps, so the tests can
// check that the migrations still define them.
func ConstraintNames() []string {
	names := make([]string, 0, len(constraintErrors))
	for v := range constraintErrors {
		names = append(names, v.constraint)
	}
	return names
}
