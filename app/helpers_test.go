package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startServe runs the ethhook command line (e.g. "serve", "--modules=admin")
// in-process with the environment the test has set, and returns once
// /readyz on httpPort answers 200. It fails the test if the command stops
// first or is not ready within 30 s. At cleanup it cancels the command and
// checks it returns nil within 30 s.
func startServe(t *testing.T, httpPort int, args ...string) {
	t.Helper()
	root := NewRoot()
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.SetArgs(args)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- root.ExecuteContext(ctx) }()
	what := strings.Join(args, " ")
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop within 30s", what)
		}
	})
	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", httpPort))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-errc:
			t.Fatalf("%s stopped early: %v", what, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within 30s (last: %v)", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Secrets for tests that load the configuration: random-looking, so the
// weak-secret checks pass, and never used outside tests.
const (
	testSecretKey = "c4b1e07a9d3f2865a0e7b9d4c1f38a26e5d07b9c4a1f8e3d62b0c7a95e4d1f38"
	testJWTSecret = "f0e9d8c7b6a5948372615a4b3c2d1e0f-test-jwt"
)
