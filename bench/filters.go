package bench

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/modules/devnet"
)

// endpointFilters gives each endpoint its filter. With a share >= 1 every
// endpoint takes every log of the chain. Below that, endpoint i takes the
// logs whose topic 1 (the sender of Transfers, the owner of Approvals) is
// one of k accounts, a different run of accounts per endpoint; k is chosen
// from a sample of the devnet's logs (same seed) so the share comes close
// to the one asked for. It returns the share the filters select on that
// sample; the run reports the share it measured.
func endpointFilters(o Options, chainID uint64) ([]hook.Filter, float64, error) {
	out := make([]hook.Filter, o.Endpoints)
	if o.Share >= 1 {
		for i := range out {
			out[i] = hook.Filter{Chains: []uint64{chainID}}
		}
		return out, 1, nil
	}
	sample := devnet.New(devnet.Config{ChainID: chainID, Seed: o.Seed, LogsPerBlock: 500, FixedLogs: true})
	blocks := sample.Mine(20)
	count := map[string]int{} // Transfer sender -> logs with it as topic 1
	for _, b := range blocks {
		for _, l := range b.Logs {
			if len(l.Topics) > 1 && l.Topics[0] == devnet.TopicTransfer {
				count[strings.ToLower(l.Topics[1].Hex())] = 0
			}
		}
	}
	logs := 0
	for _, b := range blocks {
		for _, l := range b.Logs {
			logs++
			if len(l.Topics) > 1 {
				if n, ok := count[strings.ToLower(l.Topics[1].Hex())]; ok {
					count[strings.ToLower(l.Topics[1].Hex())] = n + 1
				}
			}
		}
	}
	if len(count) == 0 || logs == 0 {
		return nil, 0, fmt.Errorf("devnet sample has no Transfer senders to filter on")
	}
	accounts := make([]string, 0, len(count))
	covered := 0
	for a, n := range count {
		accounts = append(accounts, a)
		covered += n
	}
	sort.Strings(accounts)
	perAccount := float64(covered) / float64(logs) / float64(len(accounts)) // mean share of one account
	k := int(o.Share/perAccount + 0.5)
	k = max(1, min(k, len(accounts)))
	var nominal float64
	for i := range out {
		sel := make([]string, k)
		hits := 0
		for j := range sel {
			sel[j] = accounts[(i*k+j)%len(accounts)]
			hits += count[sel[j]]
		}
		nominal += float64(hits) / float64(logs)
		out[i] = hook.Filter{Chains: []uint64{chainID}, Topics: [][]string{{}, sel}}
	}
	return out, nominal / float64(len(out)), nil
}
