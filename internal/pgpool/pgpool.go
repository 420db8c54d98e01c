// Package pgpool opens Postgres connection pools with the session settings
// every ethhook pool has, for the binary and for the tests alike.
package pgpool

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ParseConfig parses dbURL and sets the session settings ethhook needs
// unless the URL sets them itself (a URL parameter pgx does not know is a
// session setting: ...?jit=on).
//
// jit=off: ethhook's statements are short and run thousands of times a
// second; Postgres compiles a statement with LLVM when its estimated cost
// passes jit_above_cost (100,000 by default). A deliver pull (msgstate.Pull)
// over a backlog of about a million pending messages crosses it, and its
// compilation took 1.7 s against 4 ms to run it: delivery fell from 1,800
// to 130 webhooks/s and the backlog grew without end (make soak at 1,000
// events/s, 22 minutes in).
func ParseConfig(dbURL string) (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	if _, set := pc.ConnConfig.RuntimeParams["jit"]; !set {
		pc.ConnConfig.RuntimeParams["jit"] = "off"
	}
	return pc, nil
}

// New opens a pool on dbURL with ParseConfig's settings.
func New(ctx context.Context, dbURL string) (*pgxpool.Pool, error) {
	pc, err := ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	return pgxpool.NewWithConfig(ctx, pc)
}
