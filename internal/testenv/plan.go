package testenv

import (
	"encoding/json"
	"testing"
)

// PlanNode is a node of EXPLAIN (FORMAT JSON) output, with what tests read
// of it (Loops only with ANALYZE).
type PlanNode struct {
	Type      string     `json:"Node Type"`
	Relation  string     `json:"Relation Name"`
	Index     string     `json:"Index Name"`
	IndexCond string     `json:"Index Cond"`
	Loops     float64    `json:"Actual Loops"`
	Plans     []PlanNode `json:"Plans"`
}

// ParsePlan reads the EXPLAIN (FORMAT JSON) output of one statement.
func ParsePlan(t testing.TB, out []byte) PlanNode {
	t.Helper()
	var plans []struct{ Plan PlanNode }
	if err := json.Unmarshal(out, &plans); err != nil || len(plans) != 1 {
		t.Fatalf("plan %s: %v", out, err)
	}
	return plans[0].Plan
}

// All returns n and every node under it.
func (n PlanNode) All() []PlanNode {
	out := []PlanNode{n}
	for _, c := range n.Plans {
		out = append(out, c.All()...)
	}
	return out
}

// ReadsNotByKey returns the nodes of plan that read relation other than
// by a lookup in index (an index scan with a condition), and how many
// times in all the lookups ran.
func (n PlanNode) ReadsNotByKey(relation, index string) (bad []PlanNode, lookups float64) {
	for _, c := range n.All() {
		if c.Relation != relation {
			continue
		}
		if (c.Type != "Index Scan" && c.Type != "Index Only Scan") || c.Index != index || c.IndexCond == "" {
			bad = append(bad, c)
		}
		lookups += c.Loops
	}
	return bad, lookups
}
