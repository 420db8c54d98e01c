// Package migrations holds the SQL schema as numbered goose files, embedded
// in the binary and applied by `ethhook migrate`.
package migrations

import "embed"

// FS holds every NNNNN_name.sql file of this directory.
//
//go:embed *.sql
var FS embed.FS
