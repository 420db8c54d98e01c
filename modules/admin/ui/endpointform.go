package ui

import (
	"encoding/json"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/decode"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
)

// endpointForm is the filter builder's state: what the form shows and what
// it posted. It converts to and from hook.Endpoint.
type endpointForm struct {
	URL            string
	Description    string
	Chains         []uint64
	OtherChains    string // comma-separated ids not in the configured list
	Addresses      string // one per line
	Events         []string
	OtherEvents    string // one signature or declaration per line
	ABI            string
	Topics         [4]string // comma-separated values per position
	Conds          []condRow
	RawConds       string // conditions the rows cannot express, one per line
	Confirmations  string
	FromBlock      string // new endpoints only: deliver history from this block
	Stage          string // "" (confirmations count), safe or finalized
	TwoPhase       bool
	BatchMax       string
	BatchWaitMS    string
	RateLimit      string
	RetrySchedule  string
	AllowRedirects bool
	Ordering       string // parallel or fifo
	FIFOKey        string // "", contract, topic1..topic3
	Signature      string // hmac or ed25519
	Enabled        bool
	Headers        string   // custom headers, one "Name: value" per line
	OpsEvents      []string // operational event types (admins only): no chain settings then
	// Fields holds errors of fields the form parses itself (numbers).
	Fields map[string]string
}

// HasTopics reports whether any raw topic is set (the section opens).
func (f endpointForm) HasTopics() bool {
	for _, t := range f.Topics {
		if strings.TrimSpace(t) != "" {
			return true
		}
	}
	return false
}

// condRow is one "argument operator value" condition.
type condRow struct {
	Arg, Op, Value string
}

// condOps are the operators the condition rows offer.
var condOps = []string{"==", "!=", ">", ">=", "<", "<=", "in"}

var condRe = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(==|!=|>=|<=|>|<|\bin\b)\s*(.+?)\s*$`)

// parseCond splits a simple condition into a row; compound ones (with
// "or"/"and") stay raw.
func parseCond(s string) (condRow, bool) {
	if strings.Contains(s, " or ") || strings.Contains(s, " and ") || strings.Contains(s, "&&") || strings.Contains(s, "||") {
		return condRow{}, false
	}
	m := condRe.FindStringSubmatch(s)
	if m == nil {
		return condRow{}, false
	}
	return condRow{Arg: m[1], Op: m[2], Value: m[3]}, true
}

func (r condRow) String() string {
	return strings.TrimSpace(r.Arg) + " " + r.Op + " " + strings.TrimSpace(r.Value)
}

// builtinEvent is one choice of the event picker.
type builtinEvent struct {
	Decl  string // value posted: a human-readable declaration
	Label string
	Note  string
}

// builtinEvents lists decode's built-in set for the picker.
func builtinEvents() []builtinEvent {
	var out []builtinEvent
	for _, e := range decode.Builtin().All() {
		out = append(out, builtinEvent{Decl: declOf(e), Label: e.Signature, Note: standardOf(e)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Label < out[j].Label })
	return out
}

// declOf writes an event back as a human-readable declaration, which
// keeps argument names and indexed markers (ERC-20 and ERC-721 Transfer
// share a signature and differ only there).
func declOf(e *decode.Event) string {
	var b strings.Builder
	b.WriteString("event ")
	b.WriteString(e.Name)
	b.WriteByte('(')
	for i, a := range e.Args {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.Type.String())
		if a.Indexed {
			b.WriteString(" indexed")
		}
		if a.Name != "" {
			b.WriteByte(' ')
			b.WriteString(a.Name)
		}
	}
	b.WriteByte(')')
	return b.String()
}

func standardOf(e *decode.Event) string {
	switch {
	case e.Name == "Transfer" && e.Topics() == 4:
		return "ERC-721"
	case e.Name == "Approval" && e.Topics() == 4, e.Name == "ApprovalForAll":
		return "ERC-721"
	case e.Name == "Transfer" || e.Name == "Approval":
		return "ERC-20"
	case strings.HasPrefix(e.Name, "Transfer"):
		return "ERC-1155"
	case e.Name == "Swap" && len(e.Args) == 6:
		return "Uniswap V2"
	case e.Name == "Swap":
		return "Uniswap V3"
	}
	return ""
}

// abiEvent is an event found in a pasted ABI.
type abiEvent struct {
	Signature string
	Args      []string
}

// abiEvents reads the events of a pasted ABI for the picker.
func abiEvents(raw string) ([]abiEvent, error) {
	evs, err := decode.ParseABI([]byte(raw))
	if err != nil {
		return nil, err
	}
	out := make([]abiEvent, 0, len(evs))
	for _, e := range evs {
		out = append(out, abiEvent{Signature: e.Signature, Args: e.ArgNames()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Signature < out[j].Signature })
	return out, nil
}

// argNames are the argument names the chosen events offer to conditions.
func (f *endpointForm) argNames() []string {
	seen := map[string]bool{}
	var out []string
	add := func(e *decode.Event) {
		for _, n := range e.ArgNames() {
			if n != "" && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	for _, d := range append(append([]string{}, f.Events...), lines(f.OtherEvents)...) {
		if e, err := decode.ParseEvent(d); err == nil {
			add(e)
		}
	}
	if strings.TrimSpace(f.ABI) != "" {
		if evs, err := decode.ParseABI([]byte(f.ABI)); err == nil {
			for _, e := range evs {
				add(e)
			}
		}
	}
	sort.Strings(out)
	return out
}

// lines splits on newlines and commas, trimming and dropping blanks.
func lines(s string) []string {
	var out []string
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' }) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// newEndpointForm is the form for a new endpoint: every configured chain
// ticked when there is only one, confirmations from that chain's default.
func newEndpointForm(chains []config.Chain) endpointForm {
	f := endpointForm{Enabled: true, Confirmations: "0", BatchMax: "0", BatchWaitMS: "0", RateLimit: "0", Ordering: hook.OrderingParallel, Signature: "hmac"}
	if len(chains) == 1 {
		f.Chains = []uint64{chains[0].ID}
		f.Confirmations = strconv.Itoa(chains[0].Confirmations)
	}
	return f
}

// formFromEndpoint fills the form to edit ep.
func formFromEndpoint(ep hook.Endpoint, chains []config.Chain) endpointForm {
	f := endpointForm{
		URL: ep.URL, Description: ep.Description, AllowRedirects: ep.AllowRedirects, Enabled: ep.Enabled,
		Ordering: ep.Ordering, FIFOKey: ep.FIFOKey, Signature: ep.Signature,
		Confirmations: strconv.Itoa(ep.Confirmations), BatchMax: strconv.Itoa(ep.BatchMax),
		BatchWaitMS: strconv.Itoa(ep.BatchWaitMS), RateLimit: strconv.Itoa(ep.RateLimit),
		Stage: ep.Stage, TwoPhase: ep.TwoPhase,
		RetrySchedule: strings.Join(ep.RetrySchedule, ", "),
		Addresses:     strings.Join(ep.Filter.Addresses, "\n"),
		Headers:       headerLines(ep.Headers),
		OpsEvents:     ep.OpsEvents,
	}
	known := map[uint64]bool{}
	for _, c := range chains {
		known[c.ID] = true
	}
	var other []string
	for _, id := range ep.Filter.Chains {
		if known[id] {
			f.Chains = append(f.Chains, id)
		} else {
			other = append(other, strconv.FormatUint(id, 10))
		}
	}
	f.OtherChains = strings.Join(other, ", ")
	builtin := map[string]bool{}
	for _, b := range builtinEvents() {
		builtin[b.Decl] = true
	}
	if len(ep.Filter.ABI) > 0 {
		if evs, err := abiEvents(string(ep.Filter.ABI)); err == nil {
			for _, e := range evs {
				builtin[e.Signature] = true // shown as ticked ABI events
			}
		}
	}
	var otherEv []string
	for _, e := range ep.Filter.Events {
		if builtin[e] {
			f.Events = append(f.Events, e)
		} else {
			otherEv = append(otherEv, e)
		}
	}
	f.OtherEvents = strings.Join(otherEv, "\n")
	if len(ep.Filter.ABI) > 0 {
		f.ABI = prettyJSON(ep.Filter.ABI)
	}
	for i := 0; i < len(ep.Filter.Topics) && i < 4; i++ {
		f.Topics[i] = strings.Join(ep.Filter.Topics[i], ", ")
	}
	var raw []string
	for _, w := range ep.Filter.Where {
		if r, ok := parseCond(w); ok {
			f.Conds = append(f.Conds, r)
		} else {
			raw = append(raw, w)
		}
	}
	f.RawConds = strings.Join(raw, "\n")
	return f
}

// parseEndpointForm reads a posted form. Numbers that do not parse are
// field errors here; everything else the endpoint service validates.
func parseEndpointForm(form url.Values) endpointForm {
	f := endpointForm{
		URL: strings.TrimSpace(form.Get("url")), Description: strings.TrimSpace(form.Get("description")),
		OtherChains: form.Get("other_chains"), Addresses: form.Get("addresses"), Events: form["events"],
		OtherEvents: form.Get("other_events"), ABI: strings.TrimSpace(form.Get("abi")), RawConds: form.Get("raw_conditions"),
		Confirmations: strings.TrimSpace(form.Get("confirmations")), BatchMax: strings.TrimSpace(form.Get("batch_max")),
		FromBlock:   strings.TrimSpace(form.Get("from_block")),
		BatchWaitMS: strings.TrimSpace(form.Get("batch_wait_ms")), RateLimit: strings.TrimSpace(form.Get("rate_limit")),
		RetrySchedule:  form.Get("retry_schedule"),
		AllowRedirects: form.Get("allow_redirects") != "",
		Stage:          strings.TrimSpace(form.Get("stage")),
		TwoPhase:       form.Get("two_phase") != "",
		Ordering:       strings.TrimSpace(form.Get("ordering")),
		FIFOKey:        strings.TrimSpace(form.Get("fifo_key")),
		Signature:      strings.TrimSpace(form.Get("signature")),
		Enabled:        form.Get("enabled") != "",
		Headers:        form.Get("headers"),
		OpsEvents:      form["ops_events"],
		Fields:         map[string]string{},
	}
	for _, s := range form["chains"] {
		if id, err := strconv.ParseUint(s, 10, 64); err == nil {
			f.Chains = append(f.Chains, id)
		}
	}
	for i := range f.Topics {
		f.Topics[i] = form.Get("topic" + strconv.Itoa(i))
	}
	args, ops, vals := form["cond_arg"], form["cond_op"], form["cond_value"]
	for i := range args {
		if i >= len(ops) || i >= len(vals) {
			break
		}
		r := condRow{Arg: strings.TrimSpace(args[i]), Op: ops[i], Value: strings.TrimSpace(vals[i])}
		if r.Arg == "" && r.Value == "" {
			continue
		}
		f.Conds = append(f.Conds, r)
	}
	return f
}

// toEndpoint builds the endpoint the form describes (no id, app or times).
func (f *endpointForm) toEndpoint() hook.Endpoint {
	if f.Fields == nil {
		f.Fields = map[string]string{}
	}
	num := func(field, s string) int {
		if s == "" {
			return 0
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			f.Fields[field] = "must be a whole number, 0 or more"
			return 0
		}
		return n
	}
	ep := hook.Endpoint{
		URL: f.URL, Description: f.Description, Enabled: f.Enabled, AllowRedirects: f.AllowRedirects,
		Ordering: f.Ordering, FIFOKey: f.FIFOKey, Signature: f.Signature,
		Confirmations: num("confirmations", f.Confirmations),
		BatchMax:      num("batch_max", f.BatchMax),
		BatchWaitMS:   num("batch_wait_ms", f.BatchWaitMS),
		RateLimit:     num("rate_limit", f.RateLimit),
		RetrySchedule: lines(f.RetrySchedule),
		Stage:         f.Stage, TwoPhase: f.TwoPhase,
	}
	if ep.Stage != "" {
		ep.Confirmations = 0 // the stage replaces the count
	}
	if f.FromBlock != "" {
		// Carried to the create call on History (see endpointAdapter.Create).
		if n, err := strconv.ParseUint(f.FromBlock, 10, 64); err != nil {
			f.Fields["from_block"] = "must be a block number, 0 or more"
		} else {
			ep.History = &hook.History{FromBlock: n}
		}
	}
	for _, l := range strings.Split(f.Headers, "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok || strings.TrimSpace(name) == "" {
			f.Fields["headers"] = "“" + strings.TrimSpace(l) + "” is not Name: value"
			continue
		}
		if ep.Headers == nil {
			ep.Headers = map[string]string{} // nil (none) on save clears them
		}
		ep.Headers[strings.TrimSpace(name)] = strings.TrimSpace(value)
	}
	ep.Filter.Chains = append(ep.Filter.Chains, f.Chains...)
	for _, s := range lines(f.OtherChains) {
		id, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			if c, ok := config.Builtin(s); ok {
				id = c.ID
			} else {
				f.Fields["chains"] = "“" + s + "” is not a chain id or known chain name"
				continue
			}
		}
		ep.Filter.Chains = append(ep.Filter.Chains, id)
	}
	ep.Filter.Addresses = lines(f.Addresses)
	ep.Filter.Events = append(append([]string{}, f.Events...), strings.FieldsFunc(f.OtherEvents, func(r rune) bool { return r == '\n' || r == '\r' })...)
	ep.Filter.Events = trimAll(ep.Filter.Events)
	if f.ABI != "" {
		if !json.Valid([]byte(f.ABI)) {
			f.Fields["abi"] = "is not valid JSON"
		} else {
			ep.Filter.ABI = json.RawMessage(f.ABI)
		}
	}
	last := -1
	var topics [][]string
	for i, t := range f.Topics {
		vals := lines(t)
		topics = append(topics, vals)
		if len(vals) > 0 {
			last = i
		}
	}
	if last >= 0 {
		ep.Filter.Topics = topics[:last+1]
	}
	for _, r := range f.Conds {
		ep.Filter.Where = append(ep.Filter.Where, r.String())
	}
	ep.Filter.Where = append(ep.Filter.Where, trimAll(strings.Split(f.RawConds, "\n"))...)
	if len(f.OpsEvents) > 0 {
		// An operational endpoint receives EthHook's own events: the
		// chain settings (pre-filled on a new form) do not apply.
		ep.OpsEvents = f.OpsEvents
		ep.Filter, ep.Confirmations, ep.Stage, ep.TwoPhase, ep.BatchMax, ep.History = hook.Filter{}, 0, "", false, 0, nil
	}
	return ep
}

// inputOf is the endpoint service's create input for the form's endpoint.
func inputOf(ep hook.Endpoint) endpoint.Input {
	fin := hook.FormatFinality(ep.Stage, ep.Confirmations)
	in := endpoint.Input{
		URL: ep.URL, Description: ep.Description, Filter: ep.Filter, Confirmations: &ep.Confirmations, Finality: &fin,
		TwoPhase: ep.TwoPhase, BatchMax: ep.BatchMax, BatchWaitMS: ep.BatchWaitMS, RateLimit: ep.RateLimit,
		RetrySchedule: ep.RetrySchedule, AllowRedirects: ep.AllowRedirects, Headers: ep.Headers,
		Ordering: ep.Ordering, FIFOKey: ep.FIFOKey, OpsEvents: ep.OpsEvents, Signature: ep.Signature,
	}
	if ep.History != nil { // the form's from_block
		in.FromBlock = &ep.History.FromBlock
	}
	return in
}

// patchOf is the endpoint service's patch setting every field the form
// has to the form's endpoint.
func patchOf(ep hook.Endpoint) endpoint.Patch {
	fin := hook.FormatFinality(ep.Stage, ep.Confirmations)
	ops := append([]string{}, ep.OpsEvents...)
	return endpoint.Patch{
		URL: &ep.URL, Description: &ep.Description, Filter: &ep.Filter, Confirmations: &ep.Confirmations, Finality: &fin,
		TwoPhase: &ep.TwoPhase, BatchMax: &ep.BatchMax, BatchWaitMS: &ep.BatchWaitMS, RateLimit: &ep.RateLimit,
		RetrySchedule: &ep.RetrySchedule, AllowRedirects: &ep.AllowRedirects, Headers: &ep.Headers,
		Ordering: &ep.Ordering, FIFOKey: &ep.FIFOKey, OpsEvents: &ops, Signature: nonEmpty(ep.Signature),
	}
}

// nonEmpty is nil for "": a form without the field changes nothing (an
// empty signature would switch an ed25519 endpoint back to hmac).
func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func trimAll(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// headerLines shows custom headers one "Name: value" per line, sorted.
func headerLines(h map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(h)) {
		b.WriteString(k + ": " + h[k] + "\n")
	}
	return b.String()
}
