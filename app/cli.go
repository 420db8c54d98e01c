package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/tenant"
)

// Exit statuses, as gh and most Unix tools use them: 1 when the command
// ran and failed, 2 when it was called wrongly (unknown command or flag,
// missing or extra arguments, a flag out of range).
const (
	exitFailure = 1
	exitUsage   = 2
)

// usageError is an error in how a command was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitCode is the process status for err returned by the command tree.
func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) || strings.HasPrefix(err.Error(), "required flag(s)") { // cobra's own message
		return exitUsage
	}
	return exitFailure
}

// report prints err to stderr the way gh does: the error, then for a usage
// error a hint to the command's help. Nothing goes to stdout, which stays
// for output a script reads (--json).
func report(stderr io.Writer, cmd *cobra.Command, err error) int {
	fmt.Fprintln(stderr, "ethhook:", err)
	code := exitCode(err)
	if code == exitUsage && cmd != nil {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// limitUsage documents --limit, bounded as the API bounds ?limit=.
var limitUsage = fmt.Sprintf("page size, 1 to %d (default %d)", tenant.MaxLimit, tenant.DefaultLimit)

// checkLimit rejects a --limit the API would reject; 0 (unset) is the default.
func checkLimit(cmd *cobra.Command, limit int) error {
	if cmd.Flags().Changed("limit") && (limit < 1 || limit > tenant.MaxLimit) {
		return usageErrorf("--limit must be between 1 and %d, got %d", tenant.MaxLimit, limit)
	}
	return nil
}

// notFound names what was not found ("endpoint ep_x not found") instead of
// a bare "not found".
func notFound(err error, what, id string) error {
	if errors.Is(err, hook.ErrNotFound) {
		return fmt.Errorf("%s %s not found", what, id)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, id, err)
	}
	return nil
}

// strictUsage makes every misuse of the tree a usageError: a command group
// given an unknown subcommand says so (with suggestions) instead of
// printing its help and exiting 0, argument-count and flag errors are
// usage errors, and a group called alone prints its help.
func strictUsage(root *cobra.Command) {
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.HasSubCommands() && !c.Runnable() {
			c.Args = func(c *cobra.Command, args []string) error {
				if len(args) == 0 {
					return nil
				}
				msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
				if s := c.SuggestionsFor(args[0]); len(s) > 0 {
					msg += "; did you mean " + strings.Join(s, " or ") + "?"
				}
				return usageError{errors.New(msg)}
			}
			c.RunE = func(c *cobra.Command, args []string) error { return c.Help() }
			if c.Annotations == nil {
				c.Annotations = map[string]string{}
			}
			c.Annotations[groupAnnotation] = "true"
			return
		}
		if c.Args == nil { // a leaf that takes no arguments: an extra one is a mistake, not ignored
			c.Args = cobra.NoArgs
		}
		if check := c.Args; check != nil {
			c.Args = func(c *cobra.Command, args []string) error {
				if err := check(c, args); err != nil {
					return usageError{err}
				}
				return nil
			}
		}
	}
	walk(root)
}

// printJSON prints v as indented JSON, the output of every --json.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printList prints one page of a list command: with --json in the API's
// list shape ({"data": [...], "next_cursor": "..."}, data [] rather than
// null), else a table of header and one row per item, then how to get the
// next page.
func printList[T any](w io.Writer, asJSON bool, items []T, next, header string, row func(T) string) error {
	if asJSON {
		if items == nil {
			items = []T{}
		}
		return printJSON(w, map[string]any{"data": items, "next_cursor": next})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, it := range items {
		fmt.Fprintln(tw, row(it))
	}
	if next != "" {
		fmt.Fprintf(tw, "(more: --cursor %s)\n", next)
	}
	return tw.Flush()
}
