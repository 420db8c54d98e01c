package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/ops"
	"github.com/ethhook/ethhook/sign"
)

// endpointFlags are the settings create and update share.
type endpointFlags struct {
	url, description, abiFile, retry string
	chains, addresses, events, where []string
	topics                           [4][]string
	confirmations                    int
	batchMax, batchWaitMS, rateLimit int
	allowRedirects                   bool
	finality                         string
	twoPhase                         bool
	ordering, fifoKey                string
	signature                        string
	headers, opsEvents               []string
}

func (f *endpointFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.url, "url", "", "webhook URL (http:// or https://)")
	fl.StringVar(&f.description, "description", "", "free text")
	fl.StringSliceVar(&f.chains, "chain", nil, "chain id or name (repeatable)")
	fl.StringSliceVar(&f.addresses, "address", nil, "contract address, any of (repeatable)")
	for i := range 4 {
		fl.StringSliceVar(&f.topics[i], fmt.Sprintf("topic%d", i), nil, fmt.Sprintf("accepted topic%d value, any of (repeatable; none = wildcard)", i))
	}
	fl.StringArrayVar(&f.events, "event", nil, "event signature, declaration or ABI name, e.g. 'Transfer(address,address,uint256)' (repeatable)")
	fl.StringVar(&f.abiFile, "abi", "", "file with the contract ABI (JSON) to decode with")
	fl.StringArrayVar(&f.where, "where", nil, "condition on decoded arguments, e.g. 'value >= 1000' (repeatable, all must hold)")
	fl.IntVar(&f.confirmations, "confirmations", -1, "blocks deep before delivery (default: the chain's default)")
	fl.StringVar(&f.finality, "finality", "", "latest, confirmations:N, safe or finalized (the node's tags); replaces --confirmations")
	fl.BoolVar(&f.twoPhase, "two-phase", false, "deliver each log at once, then log.finalized (same event id) at the finality stage")
	fl.IntVar(&f.batchMax, "batch-max", 0, "deliver up to this many events per POST (0 = no batching)")
	fl.IntVar(&f.batchWaitMS, "batch-wait-ms", 0, "longest an event waits for its batch, in ms")
	fl.IntVar(&f.rateLimit, "rate-limit", 0, "max events/s to this endpoint (0 = plan default)")
	fl.StringVar(&f.retry, "retry-schedule", "", "retry delays, e.g. 0s,5s,5m,30m (default: the configured schedule)")
	fl.BoolVar(&f.allowRedirects, "allow-redirects", false, "follow HTTP redirects")
	fl.StringVar(&f.ordering, "ordering", "", "delivery order: parallel (default) or fifo (in chain order, a failing webhook holds later ones back)")
	fl.StringVar(&f.fifoKey, "fifo-key", "", "with --ordering fifo, one order per value of: contract, topic1, topic2 or topic3 (default: one order per chain)")
	fl.StringVar(&f.signature, "signature", "", "signature scheme: hmac (default; v1, shared whsec_ secret) or ed25519 (v1a; receivers verify with the whpk_ public key). On update a change rotates: the old secret keeps signing for 24h")
	fl.StringArrayVar(&f.headers, "header", nil, "static header sent with every delivery, 'Name: value' (repeatable; on update the given set replaces the old, --header '' clears it)")
	fl.StringArrayVar(&f.opsEvents, "ops-event", nil, "make an operational endpoint for EthHook's own events of this type: "+strings.Join(ops.Types, ", ")+" (repeatable; admin only)")
}

// headerMap parses --header values "Name: value"; "" alone clears.
func (f *endpointFlags) headerMap() (map[string]string, error) {
	out := map[string]string{}
	for _, h := range f.headers {
		if h == "" {
			continue
		}
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("--header %q: want 'Name: value'", h)
		}
		out[strings.TrimSpace(name)] = strings.TrimSpace(value)
	}
	return out, nil
}

// filter builds the filter from the flags over base: only the parts whose
// flags were given replace base's.
func (f *endpointFlags) filter(rt *Runtime, cmd *cobra.Command, base hook.Filter) (hook.Filter, error) {
	changed := cmd.Flags().Changed
	out := base
	if changed("chain") {
		out.Chains = nil
		for _, c := range f.chains {
			id, err := chainID(rt, c)
			if err != nil {
				return out, err
			}
			out.Chains = append(out.Chains, id)
		}
	}
	if changed("address") {
		out.Addresses = f.addresses
	}
	for i := range 4 {
		if changed(fmt.Sprintf("topic%d", i)) {
			for len(out.Topics) <= i {
				out.Topics = append(out.Topics, nil)
			}
			out.Topics[i] = f.topics[i]
		}
	}
	if changed("event") {
		out.Events = f.events
	}
	if changed("abi") {
		out.ABI = nil
		if f.abiFile != "" {
			b, err := os.ReadFile(f.abiFile)
			if err != nil {
				return out, fmt.Errorf("--abi: %w", err)
			}
			if !json.Valid(b) {
				return out, fmt.Errorf("--abi: %s is not JSON", f.abiFile)
			}
			out.ABI = b
		}
	}
	if changed("where") {
		out.Where = f.where
	}
	return out, nil
}

func chainID(rt *Runtime, s string) (uint64, error) {
	if id, err := strconv.ParseUint(s, 10, 64); err == nil {
		return id, nil
	}
	if c, ok := rt.Cfg.Chain(s); ok {
		return c.ID, nil
	}
	if c, ok := config.Builtin(s); ok {
		return c.ID, nil
	}
	return 0, fmt.Errorf("--chain: %q is neither a chain id nor a known chain name", s)
}

// ordering is how show prints an endpoint's delivery order.
func ordering(e hook.Endpoint) string {
	if e.FIFO() && e.FIFOKey != "" {
		return e.Ordering + " by " + e.FIFOKey
	}
	return e.Ordering
}

func splitSchedule(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func endpointService(rt *Runtime, cmd *cobra.Command) (*endpoint.Service, error) {
	pool, err := rt.Postgres(cmd.Context())
	if err != nil {
		return nil, err
	}
	box, err := rt.SecretBox()
	if err != nil {
		return nil, err
	}
	// Redis is optional for the CLI: without it, process still hears the
	// Postgres NOTIFY.
	rdb, _ := rt.Redis()
	return endpoint.New(pool, box, rdb, rt.Keys(), rt.Cfg.Chains), nil
}

// newEndpointCmd is `ethhook endpoint create|list|show|update|enable|disable|delete|secret|rotate-secret`.
func newEndpointCmd(rt *Runtime) *cobra.Command {
	var asJSON bool
	var appID string
	cmd := &cobra.Command{Use: "endpoint", Short: "Manage webhook endpoints: where to send which events"}
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.PersistentFlags().StringVar(&appID, "app", "", "application id (required)")
	scope := hook.Operator

	show := func(c *cobra.Command, e hook.Endpoint) error {
		if asJSON {
			return printJSON(c.OutOrStdout(), e)
		}
		b, _ := json.MarshalIndent(e.Filter, "  ", "  ")
		w := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "id\t%s\napp\t%s\nurl\t%s\nenabled\t%v %s\nconfirmations\t%d\nfinality\t%s (two-phase %v)\nbatch\tmax %d, wait %d ms\nrate limit\t%d/s\nordering\t%s\nsignature\t%s\nretry schedule\t%s\ndescription\t%s\nfilter\t%s\n",
			e.ID, e.AppID, e.URL, e.Enabled, e.DisabledReason, e.Confirmations, e.Finality, e.TwoPhase, e.BatchMax, e.BatchWaitMS, e.RateLimit,
			ordering(e), e.Signature, strings.Join(e.RetrySchedule, ","), e.Description, b)
		return w.Flush()
	}
	// withService checks --app and opens the endpoint service before run.
	withService := func(run func(c *cobra.Command, svc *endpoint.Service, args []string) error) func(*cobra.Command, []string) error {
		return func(c *cobra.Command, args []string) error {
			if appID == "" {
				return usageErrorf("--app is required")
			}
			svc, err := endpointService(rt, c)
			if err != nil {
				return err
			}
			err = run(c, svc, args)
			if len(args) == 1 && errors.Is(err, hook.ErrNotFound) {
				// The service does not say which: the endpoint, or the
				// application it was looked for in.
				return fmt.Errorf("endpoint %s not found in application %s", args[0], appID)
			}
			if errors.Is(err, hook.ErrNotFound) {
				return fmt.Errorf("application %s not found", appID)
			}
			return err
		}
	}

	var cf endpointFlags
	var fromBlock int64
	create := &cobra.Command{
		Use:   "create --app ID --url URL --chain CHAIN [flags]",
		Short: "Create an endpoint; prints its id and signing secret (shown only now)",
		Args:  cobra.NoArgs,
		RunE: withService(func(c *cobra.Command, svc *endpoint.Service, args []string) error {
			f, err := cf.filter(rt, c, hook.Filter{})
			if err != nil {
				return err
			}
			in := endpoint.Input{URL: cf.url, Description: cf.description, Filter: f, BatchMax: cf.batchMax,
				BatchWaitMS: cf.batchWaitMS, RateLimit: cf.rateLimit, RetrySchedule: splitSchedule(cf.retry), AllowRedirects: cf.allowRedirects,
				Ordering: cf.ordering, FIFOKey: cf.fifoKey, Signature: cf.signature,
				OpsEvents: cf.opsEvents}
			if in.Headers, err = cf.headerMap(); err != nil {
				return err
			}
			if cf.confirmations >= 0 {
				in.Confirmations = &cf.confirmations
			}
			if c.Flags().Changed("from-block") {
				if fromBlock < 0 {
					return fmt.Errorf("--from-block: must be a block number, 0 or more, got %d", fromBlock)
				}
				n := uint64(fromBlock)
				in.FromBlock = &n
			}
			if cf.finality != "" {
				in.Finality = &cf.finality
			}
			in.TwoPhase = cf.twoPhase
			e, secret, err := svc.Create(c.Context(), scope, appID, in)
			if err != nil {
				return err
			}
			if asJSON {
				// As POST .../endpoints answers: the endpoint and its secret, side by side.
				return printJSON(c.OutOrStdout(), struct {
					hook.Endpoint
					Secret string `json:"secret"`
				}{e, secret})
			}
			if e.Signature == sign.SchemeEd25519 {
				_, err = fmt.Fprintf(c.OutOrStdout(), "%s\nsecret: %s (the ed25519 public key receivers verify v1a signatures with; the private key never leaves EthHook; `ethhook endpoint secret` shows it again)\n", e.ID, secret)
				return err
			}
			_, err = fmt.Fprintf(c.OutOrStdout(), "%s\nsecret: %s (shown once; `ethhook endpoint secret` shows it again)\n", e.ID, secret)
			return err
		}),
	}
	cf.register(create)
	create.Flags().Int64Var(&fromBlock, "from-block", 0, "also deliver the matching events from this block up to now (history; needs exactly one --chain)")

	var cursor string
	var limit int
	list := &cobra.Command{
		Use:   "list --app ID",
		Short: "List an application's endpoints",
		Args:  cobra.NoArgs,
		RunE: withService(func(c *cobra.Command, svc *endpoint.Service, args []string) error {
			if err := checkLimit(c, limit); err != nil {
				return err
			}
			eps, next, err := svc.List(c.Context(), scope, appID, cursor, limit)
			if err != nil {
				return err
			}
			return printList(c.OutOrStdout(), asJSON, eps, next, "ID\tENABLED\tCHAINS\tCONF\tURL", func(e hook.Endpoint) string {
				return fmt.Sprintf("%s\t%v\t%v\t%d\t%s", e.ID, e.Enabled, e.Filter.Chains, e.Confirmations, e.URL)
			})
		}),
	}
	list.Flags().StringVar(&cursor, "cursor", "", "cursor of the next page")
	list.Flags().IntVar(&limit, "limit", 0, limitUsage)

	var uf endpointFlags
	update := &cobra.Command{
		Use:   "update --app ID ENDPOINT_ID [flags]",
		Short: "Change an endpoint; only the flags given change (a filter flag replaces that part of the filter)",
		Args:  cobra.ExactArgs(1),
		RunE: withService(func(c *cobra.Command, svc *endpoint.Service, args []string) error {
			cur, err := svc.Get(c.Context(), scope, appID, args[0])
			if err != nil {
				return err
			}
			changed := c.Flags().Changed
			var p endpoint.Patch
			// The flags that point the patch's field at the flag's value.
			for _, f := range []struct {
				flag string
				set  func()
			}{
				{"url", func() { p.URL = &uf.url }},
				{"description", func() { p.Description = &uf.description }},
				{"confirmations", func() { p.Confirmations = &uf.confirmations }},
				{"finality", func() { p.Finality = &uf.finality }},
				{"two-phase", func() { p.TwoPhase = &uf.twoPhase }},
				{"batch-max", func() { p.BatchMax = &uf.batchMax }},
				{"batch-wait-ms", func() { p.BatchWaitMS = &uf.batchWaitMS }},
				{"rate-limit", func() { p.RateLimit = &uf.rateLimit }},
				{"allow-redirects", func() { p.AllowRedirects = &uf.allowRedirects }},
				{"ordering", func() { p.Ordering = &uf.ordering }},
				{"fifo-key", func() { p.FIFOKey = &uf.fifoKey }},
				{"signature", func() { p.Signature = &uf.signature }},
				{"ops-event", func() { p.OpsEvents = &uf.opsEvents }},
			} {
				if changed(f.flag) {
					f.set()
				}
			}
			for _, n := range []string{"chain", "address", "topic0", "topic1", "topic2", "topic3", "event", "abi", "where"} {
				if changed(n) {
					f, err := uf.filter(rt, c, cur.Filter)
					if err != nil {
						return err
					}
					p.Filter = &f
					break
				}
			}
			if changed("retry-schedule") {
				s := splitSchedule(uf.retry)
				p.RetrySchedule = &s
			}
			if changed("header") {
				h, err := uf.headerMap()
				if err != nil {
					return err
				}
				p.Headers = &h
			}
			e, err := svc.Update(c.Context(), scope, appID, args[0], p)
			if err != nil {
				return err
			}
			return show(c, e)
		}),
	}
	uf.register(update)

	simple := func(use, short string, run func(c *cobra.Command, svc *endpoint.Service, id string) (any, error)) *cobra.Command {
		return &cobra.Command{
			Use:   use + " --app ID ENDPOINT_ID",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: withService(func(c *cobra.Command, svc *endpoint.Service, args []string) error {
				out, err := run(c, svc, args[0])
				if err != nil {
					return err
				}
				if e, ok := out.(hook.Endpoint); ok {
					return show(c, e)
				}
				if asJSON {
					return printJSON(c.OutOrStdout(), out)
				}
				fields := out.(map[string]string)
				for _, k := range slices.Sorted(maps.Keys(fields)) { // "id" before "secret"
					fmt.Fprintf(c.OutOrStdout(), "%s: %s\n", k, fields[k])
				}
				return nil
			}),
		}
	}
	showCmd := simple("show", "Show one endpoint", func(c *cobra.Command, svc *endpoint.Service, id string) (any, error) {
		return svc.Get(c.Context(), scope, appID, id)
	})
	var reason string
	disable := simple("disable", "Stop matching and delivering for an endpoint", func(c *cobra.Command, svc *endpoint.Service, id string) (any, error) {
		return svc.Disable(c.Context(), scope, appID, id, reason)
	})
	disable.Flags().StringVar(&reason, "reason", "", "why (shown with the endpoint)")
	enable := simple("enable", "Resume an endpoint", func(c *cobra.Command, svc *endpoint.Service, id string) (any, error) {
		return svc.Enable(c.Context(), scope, appID, id)
	})
	del := simple("delete", "Delete an endpoint and its messages", func(c *cobra.Command, svc *endpoint.Service, id string) (any, error) {
		if err := svc.Delete(c.Context(), scope, appID, id); err != nil {
			return nil, err
		}
		return map[string]string{"deleted": id}, nil
	})
	secret := simple("secret", "Print what an endpoint's receiver verifies with: its whsec_ secret, or its whpk_ public key (ed25519)", func(c *cobra.Command, svc *endpoint.Service, id string) (any, error) {
		s, err := svc.Secret(c.Context(), scope, appID, id)
		if err != nil {
			return nil, err
		}
		return map[string]string{"secret": s, "signature": sign.SchemeOf(s)}, nil // as GET .../secret answers
	})
	var overlap time.Duration
	rotate := simple("rotate-secret", "Make a new signing secret; the old one keeps signing for --overlap", func(c *cobra.Command, svc *endpoint.Service, id string) (any, error) {
		s, err := svc.RotateSecret(c.Context(), scope, appID, id, overlap)
		if err != nil {
			return nil, err
		}
		return map[string]string{"secret": s, "signature": sign.SchemeOf(s)}, nil // as POST .../rotate-secret answers
	})
	rotate.Flags().DurationVar(&overlap, "overlap", 24*time.Hour, "how long the old secret still signs")

	cmd.AddCommand(create, list, showCmd, update, disable, enable, del, secret, rotate)
	return cmd
}
