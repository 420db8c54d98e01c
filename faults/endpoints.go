//go:build faults

package faults

import (
	"context"
	"encoding/json"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Topics of the devnet's logs (modules/devnet: ERC-20 Transfer and Approval,
// Uniswap-V2 Swap).
const (
	topicTransfer = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
	topicApproval = "0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b25291e5200ac8c7b9c925"
)

// endpointSpec is one endpoint of a scenario: its filter (kept simple, so
// the suite can apply the same filter to the ground truth), its finality,
// its receiver's policy, and what happens to it during the scenario.
type endpointSpec struct {
	name          string // receiver path
	confirmations int
	topic0        string
	address       string
	topic2        string   // Transfer: the recipient, as a 32-byte topic
	valueBelow    *big.Int // `--where 'value < N'`
	policy        policy
	rateLimit     int     // events/s, --rate-limit (0: the plan's, none)
	fromBlock     *uint64 // --from-block: history from this block, then live

	id, secret string

	// Set by the scenario as they happen.
	deletedAt   time.Time // deleted mid-flight
	enabledHead uint64    // disabled, then enabled again at this head
	toggled     bool
	goes410     bool // answers 410 after a while: must end disabled
}

func (e *endpointSpec) matches(l chainLog) bool {
	if e.topic0 != "" && (len(l.Topics) == 0 || !strings.EqualFold(l.Topics[0], e.topic0)) {
		return false
	}
	if e.address != "" && !strings.EqualFold(l.Address, e.address) {
		return false
	}
	if e.topic2 != "" && (len(l.Topics) < 3 || !strings.EqualFold(l.Topics[2], e.topic2)) {
		return false
	}
	if e.valueBelow != nil && l.value().Cmp(e.valueBelow) >= 0 {
		return false
	}
	return true
}

// createEndpoint creates e with the CLI, as an operator would.
func (c *cluster) createEndpoint(e *endpointSpec) {
	c.t.Helper()
	args := []string{"--config", c.cfg, "endpoint", "create", "--json", "--app", c.appID, "--url", c.recv.url(e.name),
		"--chain", strconv.Itoa(chainID), "--confirmations", strconv.Itoa(e.confirmations)}
	if e.topic0 != "" {
		args = append(args, "--topic0", e.topic0)
	}
	if e.address != "" {
		args = append(args, "--address", e.address)
	}
	if e.topic2 != "" {
		args = append(args, "--topic2", e.topic2)
	}
	if e.rateLimit > 0 {
		args = append(args, "--rate-limit", strconv.Itoa(e.rateLimit))
	}
	if e.fromBlock != nil {
		args = append(args, "--from-block", strconv.FormatUint(*e.fromBlock, 10))
	}
	if e.valueBelow != nil {
		args = append(args, "--event", "Transfer(address indexed from, address indexed to, uint256 value)", "--where", "value < "+e.valueBelow.String())
	}
	var out struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	b := run(c.t, c.env, c.dir, args...)
	if err := json.Unmarshal(b, &out); err != nil || out.ID == "" || out.Secret == "" {
		c.t.Fatalf("endpoint create %s: %v %s", e.name, err, b)
	}
	e.id, e.secret = out.ID, out.Secret
	c.recv.register(e.name, e.secret, e.policy)
	c.eps = append(c.eps, e)
}

func (c *cluster) endpointCmd(action string, e *endpointSpec) {
	c.t.Helper()
	run(c.t, c.env, c.dir, "--config", c.cfg, "endpoint", action, "--json", "--app", c.appID, e.id)
}

// enabled reads whether the endpoint is enabled now.
func (c *cluster) enabled(e *endpointSpec) bool {
	var on bool
	err := c.pool.QueryRow(context.Background(), `SELECT enabled FROM endpoints WHERE id = $1`, e.id).Scan(&on)
	return err == nil && on
}

// standardEndpoints are the endpoints most scenarios use: Transfers with no
// confirmations (sees log.removed) and with 3 and with 6, and every log of
// one contract with 2.
func standardEndpoints(contract string) []*endpointSpec {
	return []*endpointSpec{
		{name: "transfers-c0", confirmations: 0, topic0: topicTransfer},
		{name: "transfers-c3", confirmations: 3, topic0: topicTransfer},
		{name: "contract-c2", confirmations: 2, address: contract},
		{name: "approvals-c12", confirmations: 12, topic0: topicApproval},
	}
}
