// Package faults is EthHook's fault suite: real processes of the real
// binary (ingest, process, deliver, serve --all) on a devnet process, a
// private Redis and a per-scenario Postgres database, each scenario injecting
// one fault under load and ending with the same accounting against the
// devnet's canonical chain (see FAULTS.md).
//
// Every file but this one is behind the `faults` build tag, so `go test
// ./...` does not run the suite; `make test/faults` does.
package faults
