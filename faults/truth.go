//go:build faults

package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
)

// chainLog is one canonical log as the devnet serves it over JSON-RPC.
type chainLog struct {
	ID      string // hook.EventID: {chain_id}:{block_hash}:{log_index}
	Block   uint64
	Address string
	Topics  []string
	Data    string
}

// value is the log's first data word (ERC-20 Transfer/Approval amount).
func (l chainLog) value() *big.Int {
	d := strings.TrimPrefix(l.Data, "0x")
	if len(d) < 64 {
		return new(big.Int)
	}
	v, _ := new(big.Int).SetString(d[:64], 16)
	return v
}

// devnetClient talks to the devnet process: its control API for faults,
// JSON-RPC over HTTP for the ground truth.
type devnetClient struct {
	t    testing.TB
	base string // http://127.0.0.1:port
	hc   http.Client

	mu   sync.Mutex
	seen map[uint64]time.Time // block number -> when the watcher first saw it as head (or below it)
	max  uint64
	stop chan struct{}
	done chan struct{}
}

func newDevnetClient(t testing.TB, base string) *devnetClient {
	return &devnetClient{t: t, base: base, hc: http.Client{Timeout: 30 * time.Second}, seen: map[uint64]time.Time{}}
}

// control posts a fault or mining command; body may be "".
func (d *devnetClient) control(action, body string) map[string]any {
	d.t.Helper()
	resp, err := d.hc.Post(d.base+"/control/"+action, "application/json", strings.NewReader(body))
	if err != nil {
		d.t.Fatalf("devnet control %s: %v", action, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		d.t.Fatalf("devnet control %s: %d %s", action, resp.StatusCode, b)
	}
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}

type headInfo struct {
	Number uint64 `json:"number"`
	Hash   string `json:"hash"`
}

func (d *devnetClient) head() (headInfo, error) {
	var h headInfo
	resp, err := d.hc.Get(d.base + "/control/head")
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	return h, json.NewDecoder(resp.Body).Decode(&h)
}

// watch records when each block number first appears (the control API is
// not delayed by a stall, so these are mining times to within 50 ms).
// Lateness is measured from them.
func (d *devnetClient) watch() {
	d.stop, d.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(d.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-d.stop:
				return
			case <-t.C:
			}
			h, err := d.head()
			if err != nil {
				continue
			}
			now := time.Now()
			d.mu.Lock()
			for n := d.max + 1; n <= h.Number; n++ {
				d.seen[n] = now
			}
			d.max = max(d.max, h.Number)
			d.mu.Unlock()
		}
	}()
	d.t.Cleanup(d.stopWatch)
}

func (d *devnetClient) stopWatch() {
	if d.stop != nil {
		select {
		case <-d.stop:
		default:
			close(d.stop)
			<-d.done
		}
	}
}

func (d *devnetClient) minedAt(n uint64) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seen[n]
}

// pause stops mining and returns the head of the chain that no longer changes.
func (d *devnetClient) pause() headInfo {
	d.t.Helper()
	d.control("pause", "")
	// A tick that passed the paused check just before may still mine a block.
	time.Sleep(300 * time.Millisecond)
	h, err := d.head()
	if err != nil {
		d.t.Fatalf("devnet head: %v", err)
	}
	return h
}

func (d *devnetClient) rpc(method string, params any, out any) error {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	resp, err := d.hc.Post(d.base+"/", "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	if r.Error != nil {
		return fmt.Errorf("%s: %d %s", method, r.Error.Code, r.Error.Message)
	}
	return json.Unmarshal(r.Result, out)
}

// canonicalLogs reads every log of canonical blocks from..to with ranged
// eth_getLogs, in chunks (the devnet, like providers, may cap a range).
func (d *devnetClient) canonicalLogs(chainID, from, to uint64) []chainLog {
	d.t.Helper()
	var out []chainLog
	const chunk = 200
	for lo := from; lo <= to; lo += chunk {
		hi := min(lo+chunk-1, to)
		var raw []struct {
			Address     string   `json:"address"`
			Topics      []string `json:"topics"`
			Data        string   `json:"data"`
			BlockNumber string   `json:"blockNumber"`
			BlockHash   string   `json:"blockHash"`
			LogIndex    string   `json:"logIndex"`
			Removed     bool     `json:"removed"`
		}
		err := d.rpc("eth_getLogs", []any{map[string]string{"fromBlock": hex(lo), "toBlock": hex(hi)}}, &raw)
		if err != nil {
			d.t.Fatalf("ground truth: eth_getLogs %d..%d: %v", lo, hi, err)
		}
		for _, l := range raw {
			bn, _ := strconv.ParseUint(strings.TrimPrefix(l.BlockNumber, "0x"), 16, 64)
			li, _ := strconv.ParseUint(strings.TrimPrefix(l.LogIndex, "0x"), 16, 64)
			out = append(out, chainLog{ID: hook.EventID(chainID, l.BlockHash, uint(li)), Block: bn,
				Address: strings.ToLower(l.Address), Topics: l.Topics, Data: l.Data})
		}
	}
	return out
}

func hex(n uint64) string { return "0x" + strconv.FormatUint(n, 16) }
