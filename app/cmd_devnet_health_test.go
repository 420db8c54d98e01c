package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"
)

// TestDevnetWithHTTPAddrServesReadyz: `ethhook devnet --http-addr` answers
// /healthz and /readyz there (ready, listing the devnet), like the other
// long-running roles.
func TestDevnetWithHTTPAddrServesReadyz(t *testing.T) {
	httpPort, rpcPort := freePort(t), freePort(t)
	startServe(t, httpPort, "devnet", "--addr", fmt.Sprintf("127.0.0.1:%d", rpcPort), "--http-addr", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--metrics-port", "0", "--block-time", "200ms")
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", httpPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ready struct {
		Ready   bool     `json:"ready"`
		Modules []string `json:"modules"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ready); err != nil || resp.StatusCode != 200 || !ready.Ready || !slices.Contains(ready.Modules, "devnet") {
		t.Fatalf("/readyz: %d %+v %v", resp.StatusCode, ready, err)
	}
	h, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", httpPort))
	if err != nil {
		t.Fatal(err)
	}
	h.Body.Close()
	if h.StatusCode != 200 {
		t.Fatalf("/healthz: %d", h.StatusCode)
	}
}
