// Package deploy holds the files an operator deploys next to EthHook
// (grafana/ethhook.json, prometheus/alerts.yml) and the test that keeps
// them true to the metrics the binary exposes. It has no code.
package deploy
