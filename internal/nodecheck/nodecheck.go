// Package nodecheck runs scripts/verify-v1a.mjs, a Standard Webhooks v1a
// verifier written on Node's crypto (OpenSSL's ed25519), so tests can check
// EthHook's signatures with an implementation that shares no code with it.
package nodecheck

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
)

// ErrNoNode means node is not installed.
var ErrNoNode = errors.New("node is not installed")

// Msg is one webhook to verify.
type Msg struct {
	PublicKey string // whpk_...
	ID        string // webhook-id
	Timestamp string // webhook-timestamp
	Signature string // webhook-signature
	Body      []byte
}

// Result is the script's verdict on one Msg.
type Result struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
}

// Script is the path of verify-v1a.mjs in this source tree.
func Script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "scripts", "verify-v1a.mjs")
}

// VerifyV1a runs the script over msgs and returns one Result each.
func VerifyV1a(ctx context.Context, msgs []Msg) ([]Result, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, ErrNoNode
	}
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	for _, m := range msgs {
		if err := enc.Encode(map[string]string{"public_key": m.PublicKey, "id": m.ID, "timestamp": m.Timestamp,
			"signature": m.Signature, "body_b64": base64.StdEncoding.EncodeToString(m.Body)}); err != nil {
			return nil, err
		}
	}
	cmd := exec.CommandContext(ctx, node, Script())
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("node %s: %w: %s", Script(), err, stderr.String())
	}
	var res []Result
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("node output %q: %w", sc.Text(), err)
		}
		res = append(res, r)
	}
	if len(res) != len(msgs) {
		return nil, fmt.Errorf("node answered %d lines for %d webhooks: %s", len(res), len(msgs), out)
	}
	return res, nil
}
