package app

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ethhook/ethhook/migrations"
)

func newMigrateCmd(rt *Runtime) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply, roll back or list the embedded database migrations",
		Long: `Manage the Postgres schema from the SQL migrations embedded in the binary.
Safe to run from several places at once (CI, every replica's start): a
Postgres advisory lock makes them apply each migration once.
` + envHelp("database_url"),
	}
	run := func(f func(ctx context.Context, m *migrations.Migrator, w io.Writer) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			pool, err := rt.Postgres(cmd.Context())
			if err != nil {
				return err
			}
			m, err := migrations.New(pool)
			if err != nil {
				return err
			}
			defer m.Close()
			return f(cmd.Context(), m, cmd.OutOrStdout())
		}
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "up",
		Short: "Apply every pending migration (idempotent)",
		Args:  cobra.NoArgs,
		RunE: run(func(ctx context.Context, m *migrations.Migrator, w io.Writer) error {
			res, err := m.Up(ctx)
			for _, r := range res {
				fmt.Fprintf(w, "applied %s\n", r.Name)
			}
			if err != nil {
				return fmt.Errorf("migrate up: %w", err)
			}
			if len(res) == 0 {
				fmt.Fprintln(w, "schema is up to date")
			}
			return nil
		}),
	}, &cobra.Command{
		Use:   "down",
		Short: "Roll back the newest applied migration",
		Args:  cobra.NoArgs,
		RunE: run(func(ctx context.Context, m *migrations.Migrator, w io.Writer) error {
			res, err := m.Down(ctx)
			for _, r := range res {
				fmt.Fprintf(w, "rolled back %s\n", r.Name)
			}
			if err != nil {
				return fmt.Errorf("migrate down: %w", err)
			}
			if len(res) == 0 {
				fmt.Fprintln(w, "nothing to roll back")
			}
			return nil
		}),
	}, &cobra.Command{
		Use:   "status",
		Short: "List every migration and whether it is applied",
		Args:  cobra.NoArgs,
		RunE: run(func(ctx context.Context, m *migrations.Migrator, w io.Writer) error {
			st, err := m.Status(ctx)
			if err != nil {
				return err
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
