// Package migrations holds the goose migrations of the PostgreSQL schema,
// embedded so the binary can migrate without the source tree.
package migrations

import "embed"

// FS holds the migration files (NNNNN_name.sql), for goose.
//
//go:embed *.sql
var FS embed.FS
