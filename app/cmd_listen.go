package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/ethhook/ethhook/modules/deliver/listen"
)

// newListenCmd is `ethhook listen`: a local receiver to watch signed
// webhooks arrive (and to answer with an error status to watch retries).
func newListenCmd(rt *Runtime) *cobra.Command {
	var (
		secrets []string
		addr    string
		status  int
	)
	cmd := &cobra.Command{
		Use:   "listen --secret whsec_... [--addr :9000] [--status 200]",
		Short: "Receive webhooks locally: verify signatures and timestamps, print them",
		Long: `Run a local webhook receiver. Every request is checked as a customer's
receiver should (Standard Webhooks: webhook-id, webhook-timestamp within 5
minutes, webhook-signature HMAC-SHA256 with the endpoint secret); valid
webhooks are printed and answered with --status (default 200; try 503 to
watch retries, 410 to watch the endpoint get disabled), invalid ones get 401.
Give --secret twice to accept either secret during a rotation.`,
		Annotations: map[string]string{noConfig: "true"},
		RunE: func(c *cobra.Command, args []string) error {
			h, err := listen.New(secrets, status, c.OutOrStdout())
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", addr, err)
			}
			fmt.Fprintf(c.OutOrStdout(), "listening on http://%s (answering %d); point an endpoint's --url here\n", ln.Addr(), status)
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
			ctx := c.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				srv.Shutdown(sctx)
			}()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&secrets, "secret", nil, "endpoint signing secret whsec_... (repeatable)")
	cmd.Flags().StringVar(&addr, "addr", ":9000", "address to listen on")
	cmd.Flags().IntVar(&status, "status", 200, "HTTP status to answer valid webhooks with")
	return cmd
}
