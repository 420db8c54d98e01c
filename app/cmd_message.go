package app

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/message"
)

func messageService(rt *Runtime, cmd *cobra.Command) (*message.Service, error) {
	pool, rdb, err := rt.pgRedis(cmd.Context())
	if err != nil {
		return nil, err
	}
	return message.New(pool, rdb, rt.Keys()).WithRetention(rt.Cfg.Retention.Messages), nil
}

// parseWhen reads an RFC 3339 time, a date (2006-01-02), or a duration
// meaning that long ago ("24h", "90m").
func msgParseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither a time (2026-01-02T15:04:05Z, 2026-01-02) nor a duration ago (24h)", s)
}

func msgBlockFlag(cmd *cobra.Command, name string, v int64) *int64 {
	if !cmd.Flags().Changed(name) {
		return nil
	}
	return &v
}

// msgWindow is the time and block range that list and replay-range take.
type msgWindow struct {
	since, until string
	from, to     int64
}

func (w *msgWindow) register(fs *pflag.FlagSet, untilUsage string) {
	fs.Int64Var(&w.from, "from-block", 0, "lowest block number")
	fs.Int64Var(&w.to, "to-block", 0, "highest block number")
	fs.StringVar(&w.since, "since", "", "created at or after (RFC 3339, date, or duration ago like 24h)")
	fs.StringVar(&w.until, "until", "", untilUsage)
}

// parse sets the range's times, and its blocks where their flags were given.
func (w msgWindow) parse(c *cobra.Command, since, until *time.Time, from, to **int64) error {
	var err error
	if *since, err = msgParseWhen(w.since); err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	if *until, err = msgParseWhen(w.until); err != nil {
		return fmt.Errorf("--until: %w", err)
	}
	*from, *to = msgBlockFlag(c, "from-block", w.from), msgBlockFlag(c, "to-block", w.to)
	return nil
}

// newMessageCmd is `ethhook message list|show|replay|replay-range`.
func newMessageCmd(rt *Runtime) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "message",
		Short: "Inspect and replay webhook messages and their delivery attempts",
	}
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON")
	// withMessages opens the message service before run.
	withMessages := func(run func(c *cobra.Command, svc *message.Service, args []string) error) func(*cobra.Command, []string) error {
		return func(c *cobra.Command, args []string) error {
			svc, err := messageService(rt, c)
			if err != nil {
				return err
			}
			return run(c, svc, args)
		}
	}

	var (
		f        message.Filter
		fw       msgWindow
		argFlags []string
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List messages, newest first (filter by endpoint, state, event, tx, blocks, time)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkLimit(c, f.Limit); err != nil {
				return err
			}
			svc, err := messageService(rt, c)
			if err != nil {
				return err
			}
			flt := f
			if err := fw.parse(c, &flt.Since, &flt.Until, &flt.FromBlock, &flt.ToBlock); err != nil {
				return err
			}
			flt.Args = nil
			for _, a := range argFlags {
				arg, err := message.ParseArg(a)
				if err != nil {
					return fmt.Errorf("--arg: %w", err)
				}
				flt.Args = append(flt.Args, arg)
			}
			page, err := svc.List(c.Context(), hook.Operator, flt)
			if err != nil {
				return err
			}
			if asJSON { // the API's list shape
				return printJSON(c.OutOrStdout(), map[string]any{"data": page.Messages, "next_cursor": page.NextCursor})
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tENDPOINT\tSTATE\tATTEMPTS\tLAST\tBLOCK\tEVENT\tCREATED")
			for _, m := range page.Messages {
				last := "-"
				if m.LastStatus != nil {
					last = strconv.Itoa(*m.LastStatus)
				} else if m.LastError != "" {
					last = "error"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", m.ID, m.EndpointID, m.State, m.Attempts, last,
					m.BlockNumber, m.WebhookID, m.CreatedAt.UTC().Format(time.RFC3339))
			}
			tw.Flush()
			if page.NextCursor != "" {
				fmt.Fprintf(c.OutOrStdout(), "more: --cursor %s\n", page.NextCursor)
			}
			return nil
		},
	}
	lf := list.Flags()
	lf.StringVar(&f.AppID, "app", "", "application id")
	lf.StringVar(&f.EndpointID, "endpoint", "", "endpoint id")
	lf.StringVar(&f.State, "state", "", "pending, delivering, succeeded, failed, dead or quota_exceeded")
	lf.StringVar(&f.EventID, "event", "", "event id (chain:blockhash:logindex)")
	lf.StringVar(&f.TxHash, "tx", "", "transaction hash")
	fw.register(lf, "created before (RFC 3339, date, or duration ago)")
	lf.StringVar(&f.Cursor, "cursor", "", "continue a previous listing")
	lf.IntVar(&f.StatusCode, "status-code", 0, "HTTP status of the last attempt (100..599)")
	lf.StringArrayVar(&argFlags, "arg", nil, "decoded argument name:value, e.g. to:0xabc (repeatable, at most 3; searches at most 7 days, default the last 24h)")
	lf.IntVar(&f.Limit, "limit", 50, limitUsage)

	show := &cobra.Command{
		Use:   "show <message id>",
		Short: "Show a message, its payload and every delivery attempt",
		Args:  cobra.ExactArgs(1),
		RunE: withMessages(func(c *cobra.Command, svc *message.Service, args []string) error {
			m, atts, err := svc.Get(c.Context(), hook.Operator, args[0])
			if err != nil {
				return notFound(err, "message", args[0])
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), map[string]any{"message": m, "attempts": atts})
			}
			w := c.OutOrStdout()
			fmt.Fprintf(w, "message     %s\nendpoint    %s (app %s)\nwebhook-id  %s\ntype        %s\nblock       %d (chain %d, tx %s)\nstate       %s after %d attempts\n",
				m.ID, m.EndpointID, m.AppID, m.WebhookID, m.Type, m.BlockNumber, m.ChainID, m.TxHash, m.State, m.Attempts)
			if m.NextAttemptAt != nil {
				fmt.Fprintf(w, "next        %s\n", m.NextAttemptAt.UTC().Format(time.RFC3339))
			}
			fmt.Fprintf(w, "payload     %s\n\nattempts:\n", m.Payload)
			for _, a := range atts {
				status := "-"
				if a.StatusCode != nil {
					status = strconv.Itoa(*a.StatusCode)
				}
				fmt.Fprintf(w, "  #%d %s status %s %dms %s %s\n", a.Attempt, a.CreatedAt.UTC().Format(time.RFC3339), status, a.LatencyMS, a.ErrorClass, a.Error)
				if a.ResponseExcerpt != "" {
					ex := a.ResponseExcerpt
					if len(ex) > 200 {
						ex = ex[:200] + "..."
					}
					fmt.Fprintf(w, "     response: %s\n", strings.ReplaceAll(ex, "\n", " "))
				}
			}
			return nil
		}),
	}

	replay := &cobra.Command{
		Use:   "replay <message id>",
		Short: "Deliver a message again (same webhook-id, fresh retry schedule)",
		Args:  cobra.ExactArgs(1),
		RunE: withMessages(func(c *cobra.Command, svc *message.Service, args []string) error {
			m, err := svc.Replay(c.Context(), hook.Operator, args[0])
			if err != nil {
				return fmt.Errorf("replay: %w", notFound(err, "message", args[0]))
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), m)
			}
			fmt.Fprintf(c.OutOrStdout(), "queued %s again (webhook-id %s)\n", m.ID, m.WebhookID)
			return nil
		}),
	}

	var (
		r  message.Range
		rw msgWindow
	)
	replayRange := &cobra.Command{
		Use:   "replay-range --endpoint ep_... (--since T [--until T] | --from-block N [--to-block N]) [--failed-only]",
		Short: "Deliver again every finished message of an endpoint in a time or block range",
		Args:  cobra.NoArgs,
		RunE: withMessages(func(c *cobra.Command, svc *message.Service, args []string) error {
			rr := r
			if err := rw.parse(c, &rr.Since, &rr.Until, &rr.FromBlock, &rr.ToBlock); err != nil {
				return err
			}
			n, err := svc.ReplayRange(c.Context(), hook.Operator, rr)
			if err != nil {
				return fmt.Errorf("replay range: %w", notFound(err, "endpoint", rr.EndpointID))
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), map[string]any{"replayed": n}) // as POST .../replay answers
			}
			fmt.Fprintf(c.OutOrStdout(), "queued %d messages of %s again\n", n, rr.EndpointID)
			return nil
		}),
	}
	rf := replayRange.Flags()
	rf.StringVar(&r.EndpointID, "endpoint", "", "endpoint id (required)")
	rw.register(rf, "created before")
	rf.BoolVar(&r.OnlyFailed, "failed-only", false, "only failed and dead messages")
	replayRange.MarkFlagRequired("endpoint")

	cmd.AddCommand(list, show, replay, replayRange)
	return cmd
}
