package filter

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ethhook/ethhook/decode"
	"github.com/ethhook/ethhook/hook"
)

func addrs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("0x%040x", i+1)
	}
	return out
}

func topics(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("0x%064x", i+1)
	}
	return out
}

func TestCompileRefusesFiltersOverTheBounds(t *testing.T) {
	deep := strings.Repeat("(", MaxConditionDepth+1) + "value > 1" + strings.Repeat(")", MaxConditionDepth+1)
	chains := make([]uint64, MaxChains+1)
	for i := range chains {
		chains[i] = uint64(i + 1)
	}
	tests := map[string]struct {
		f          hook.Filter
		field, msg string
	}{
		"chains":       {hook.Filter{Chains: chains}, "chains", "at most 32 (MaxChains)"},
		"addresses":    {hook.Filter{Chains: []uint64{1}, Addresses: addrs(MaxAddresses + 1)}, "addresses", "at most 1000 (MaxAddresses)"},
		"topic values": {hook.Filter{Chains: []uint64{1}, Topics: [][]string{nil, topics(MaxTopicValues + 1)}}, "topics[1]", "(MaxTopicValues)"},
		"events": {hook.Filter{Chains: []uint64{1}, Events: strings.Split(strings.Repeat("Transfer,", MaxEvents+1), ",")[:MaxEvents+1]},
			"events", "at most 64 (MaxEvents)"},
		"conditions": {hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: strings.Split(strings.Repeat("value > 1,", MaxConditions+1), ",")[:MaxConditions+1]},
			"where", "(MaxConditions)"},
		"long condition": {hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"value > 1" + strings.Repeat(" ", 4096)}},
			"where[0]", "(MaxConditionLen)"},
		"deep condition":  {hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{deep}}, "where[0]", "(MaxConditionDepth)"},
		"many nots":       {hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{strings.Repeat("not ", 100000) + "value > 1"}}, "where[0]", "(MaxConditionLen)"},
		"nested nots":     {hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{strings.Repeat("not ", MaxConditionDepth+1) + "value > 1"}}, "where[0]", "(MaxConditionDepth)"},
		"deep event type": {hook.Filter{Chains: []uint64{1}, Events: []string{"E(uint256" + strings.Repeat("[]", 200000) + ")"}}, "events[0]", "(MaxDeclLen)"},
		"index keys": {hook.Filter{Chains: []uint64{1, 10}, Addresses: addrs(1000), Topics: [][]string{topics(9)}},
			"filter", "at most 16384 (MaxIndexKeys)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Compile(tc.f)
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Compile: %v, want filter.Errors", err)
			}
			for _, fe := range errs {
				if fe.Field == tc.field && strings.Contains(fe.Msg, tc.msg) {
					if len(errs) > 3 {
						t.Errorf("%d errors for one oversized part: %v", len(errs), err)
					}
					return
				}
			}
			t.Fatalf("Compile: %v\nwant %s: ...%s", err, tc.field, tc.msg)
		})
	}
}

func TestCompileAcceptsFiltersAtTheBounds(t *testing.T) {
	deep := strings.Repeat("(", 16) + "value > 1" + strings.Repeat(")", 16)
	f := hook.Filter{
		Chains:    []uint64{1},
		Addresses: addrs(1000),
		Events:    []string{"Transfer", "event E(uint256" + strings.Repeat("[]", decode.MaxArrayDepth) + " v)"},
		Where:     []string{deep, "not not value > 2"},
	}
	if _, err := Compile(f); err != nil {
		t.Fatal(err)
	}
}
