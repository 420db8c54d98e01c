package app

import (
	"context"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/ethhook/ethhook/modules/devnet"
)

// moduleSpec is a module the binary can run; serve --all runs every one, in
// this order (the direction data flows), and stops them in reverse.
type moduleSpec struct {
	name    string
	needsPG bool // uses Postgres, so serve checks the schema first
	build   func(ctx context.Context, rt *Runtime, o runOptions) (Module, error)
}

// runOptions are the choices of the command that runs the modules.
type runOptions struct {
	chains []string // ingest: only these chain names (empty: all configured)
}

// moduleSpecs lists the modules compiled into this binary.
var moduleSpecs = []moduleSpec{
	{name: "devnet", build: func(ctx context.Context, rt *Runtime, o runOptions) (Module, error) {
		return devnet.NewModule(rt.Cfg.Devnet, logFor(rt, "devnet")), nil
	}},
}

// handlerModule is a module that serves HTTP routes on ETHHOOK_HTTP_ADDR
// (the admin API and web UI) next to /healthz and /readyz.
type handlerModule interface {
	Handler() http.Handler
}

// extraCommands are the commands of the modules and tools.
func extraCommands(rt *Runtime) []*cobra.Command {
	return []*cobra.Command{newDevnetCmd(rt)}
}
