package app

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/tenant"
)

// newUserCmd is `ethhook user create`: the way to make the first admin (and
// any user) from the server's command line. The password is never a flag:
// it is prompted for (twice, without echo) on a terminal, or read as the
// first line of stdin otherwise.
func newUserCmd(rt *Runtime) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage admin API users",
	}
	var asJSON bool
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON")
	var email string
	var admin bool
	var apps []string
	create := &cobra.Command{
		Use:   "create --email EMAIL [--admin] [--app APP_ID]...",
		Short: "Create a user; the password is read from a prompt or stdin",
		Long: `Create a user who can log in to the admin API and web UI.

The password is read from the terminal (asked twice, not echoed), or, when
stdin is not a terminal, from its first line:

  ethhook user create --email ops@example.com --admin
  printf '%s\n' "$PASSWORD" | ethhook user create --email dev@example.com --app app_01J...
` + envHelp("database_url"),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if email == "" {
				return usageErrorf("--email is required")
			}
			pw, err := readPassword(cmd.InOrStdin(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			pool, err := rt.Postgres(cmd.Context())
			if err != nil {
				return err
			}
			role := tenant.RoleMember
			if admin {
				role = tenant.RoleAdmin
			}
			store := tenant.New(pool)
			u, err := store.CreateUser(cmd.Context(), hook.Operator, tenant.NewUser{Email: email, Password: pw, Role: role, AppIDs: apps})
			if err != nil {
				return err
			}
			if err := store.Audit(cmd.Context(), tenant.AuditEntry{Actor: "operator", ActorType: "operator", Action: "user.create", ResourceID: u.ID}); err != nil {
				rt.Log.Warn("audit user creation: " + err.Error())
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), u) // as POST /api/v1/users answers
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %s user %s (%s)\n", u.Role, u.Email, u.ID)
			return nil
		},
	}
	create.Flags().StringVar(&email, "email", "", "the user's email (login name)")
	create.Flags().BoolVar(&admin, "admin", false, "give the admin role (every application, users, plans)")
	create.Flags().StringSliceVar(&apps, "app", nil, "application id the user is a member of (repeatable)")
	cmd.AddCommand(create)
	return cmd
}

// readPassword prompts on a terminal without echo, or reads stdin's first line.
func readPassword(in io.Reader, prompt io.Writer) (string, error) {
	if f, ok := in.(*os.File); ok && isTerminal(f) {
		fmt.Fprint(prompt, "Password: ")
		pw, err := readNoEcho(f)
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(prompt, "Repeat password: ")
		again, err := readNoEcho(f)
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if pw != again {
			return "", errors.New("the passwords differ")
		}
		return pw, nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", errors.New("no password on stdin: pipe it in (first line) or run on a terminal")
	}
	return strings.TrimRight(line, "\r\n"), nil
}
