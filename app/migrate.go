package app

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ethhook/ethhook/migrations"
	"github.com/ethhook/ethhook/retention"
)

// migrationJSON is one migration in `ethhook migrate ... --json`.
type migrationJSON struct {
	Version int64  `json:"version"`
	Name    string `json:"name"`
	Applied bool   `json:"applied"`
}

func newMigrateCmd(rt *Runtime) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply, roll back or list the embedded database migrations",
		Long: `Manage the Postgres schema from the SQL migrations embedded in the binary.
Safe to run from several places at once (CI, every replica's start): a
Postgres advisory lock makes them apply each migration once.
` + envHelp("database_url"),
	}
	var asJSON bool
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON")
	run := func(f func(ctx context.Context, m *migrations.Migrator, w io.Writer) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			m, err := openMigrator(cmd.Context(), rt)
			if err != nil {
				return err
			}
			defer m.Close()
			return f(cmd.Context(), m, cmd.OutOrStdout())
		}
	}
	// step runs up or down: it prints what was done (a line each, or a JSON
	// list), then after (when the step did not fail), then none when
	// nothing was to do.
	step := func(name, verb, none string, do func(*migrations.Migrator, context.Context) ([]migrations.Result, error),
		after func(ctx context.Context, w io.Writer) error) func(*cobra.Command, []string) error {
		return run(func(ctx context.Context, m *migrations.Migrator, w io.Writer) error {
			res, err := do(m, ctx)
			if asJSON {
				out := make([]migrationJSON, 0, len(res))
				for _, r := range res {
					out = append(out, migrationJSON{Version: r.Version, Name: r.Name, Applied: verb == "applied"})
				}
				printJSON(w, out)
			} else {
				for _, r := range res {
					fmt.Fprintf(w, "%s %s\n", verb, r.Name)
				}
			}
			if err != nil {
				return fmt.Errorf("migrate %s: %w", name, err)
			}
			if after != nil {
				if err := after(ctx, w); err != nil {
					return err
				}
			}
			if len(res) == 0 && !asJSON {
				fmt.Fprintln(w, none)
			}
			return nil
		})
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "up",
		Short: "Apply every pending migration (idempotent)",
		Args:  cobra.NoArgs,
		RunE: step("up", "applied", "schema is up to date", (*migrations.Migrator).Up, func(ctx context.Context, w io.Writer) error {
			// Partitions for today and the days ahead, so a fresh database
			// takes traffic before any retention module ran.
			pool, err := rt.Postgres(ctx)
			if err != nil {
				return err
			}
			created, err := retention.Ensure(ctx, pool, time.Now(), retention.LayoutOf(rt.Cfg.Retention))
			if err != nil {
				return fmt.Errorf("migrate up: create partitions ahead: %w", err)
			}
			if len(created) > 0 && !asJSON {
				fmt.Fprintf(w, "created partitions %s\n", strings.Join(created, ", "))
			}
			return nil
		}),
	}, &cobra.Command{
		Use:   "down",
		Short: "Roll back the newest applied migration",
		Args:  cobra.NoArgs,
		RunE:  step("down", "rolled back", "nothing to roll back", (*migrations.Migrator).Down, nil),
	}, &cobra.Command{
		Use:   "status",
		Short: "List every migration and whether it is applied",
		Args:  cobra.NoArgs,
		RunE: run(func(ctx context.Context, m *migrations.Migrator, w io.Writer) error {
			st, err := m.Status(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]migrationJSON, 0, len(st))
				for _, s := range st {
					out = append(out, migrationJSON{Version: s.Version, Name: s.Name, Applied: s.Applied})
				}
				return printJSON(w, out)
			}
			for _, s := range st {
				state := "pending"
				if s.Applied {
					state = "applied"
				}
				fmt.Fprintf(w, "%-8s %s\n", state, s.Name)
			}
			return nil
		}),
	})
	return cmd
}

// openMigrator opens the migrator on the configured database; the caller
// closes it.
func openMigrator(ctx context.Context, rt *Runtime) (*migrations.Migrator, error) {
	pool, err := rt.Postgres(ctx)
	if err != nil {
		return nil, err
	}
	return migrations.New(pool)
}
