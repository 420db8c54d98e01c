package app

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/tenant"
)

// newAppCmd is `ethhook app create|list`: applications from the command
// line, with the operator's (admin) scope, over package tenant.
func newAppCmd(rt *Runtime) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{Use: "app", Short: "Create and list applications (tenants that own endpoints)"}
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON")

	var name, plan string
	create := &cobra.Command{
		Use:   "create --name NAME",
		Short: "Create an application and print its id (--json: the application)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pool, err := rt.Postgres(cmd.Context())
			if err != nil {
				return err
			}
			store := tenant.New(pool).WithDefaultPlan(rt.Cfg.Admin.DefaultPlan)
			if plan == "" {
				if err := store.CheckDefaultPlan(cmd.Context()); err != nil {
					return err
				}
			}
			a, err := store.CreateApplication(cmd.Context(), hook.Operator, name, plan)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), a) // as POST /api/v1/applications answers
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), a.ID)
			return err
		},
	}
	create.Flags().StringVar(&name, "name", "", "application name (required)")
	create.Flags().StringVar(&plan, "plan", "", "plan id (default: admin.default_plan, unlimited unless configured)")
	_ = create.MarkFlagRequired("name")

	var cursor string
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List applications",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkLimit(cmd, limit); err != nil {
				return err
			}
			pool, err := rt.Postgres(cmd.Context())
			if err != nil {
				return err
			}
			apps, next, err := tenant.New(pool).ListApplications(cmd.Context(), hook.Operator, cursor, limit)
			if err != nil {
				return err
			}
			return printList(cmd.OutOrStdout(), asJSON, apps, next, "ID\tNAME\tPLAN\tCREATED", func(a tenant.Application) string {
				return fmt.Sprintf("%s\t%s\t%s\t%s", a.ID, a.Name, a.PlanID, a.CreatedAt.UTC().Format("2006-01-02 15:04:05"))
			})
		},
	}
	list.Flags().StringVar(&cursor, "cursor", "", "cursor of the next page")
	list.Flags().IntVar(&limit, "limit", 0, limitUsage)
	cmd.AddCommand(create, list)
	return cmd
}
