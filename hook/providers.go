package hook

import (
	"encoding/json"
	"fmt"
)

// ProviderHealth is one provider of a chain as ingest reports it when the
// chain's quorum is set: `<prefix>{<chain>}:providers` holds the JSON array
// of them (EncodeProviders), in ws_urls order, refreshed with the head and
// expiring when no ingester watches the chain.
type ProviderHealth struct {
	Provider string `json:"provider"` // the URL, redacted (no path, no password)
	// Health is healthy, lagging (has not the block the others agree on),
	// disagrees (another hash at that number), unreachable, wrong_chain or
	// invalid (an answer that breaks the spec); "" before it was asked.
	Health string `json:"health"`
}

// EncodeProviders is the value of the providers key.
func EncodeProviders(ps []ProviderHealth) string {
	b, _ := json.Marshal(ps) // strings only: cannot fail
	return string(b)
}

// ParseProviders parses the value of the providers key.
func ParseProviders(s string) ([]ProviderHealth, error) {
	var ps []ProviderHealth
	if err := json.Unmarshal([]byte(s), &ps); err != nil {
		return nil, fmt.Errorf("providers %q: %w", s, err)
	}
	return ps, nil
}
