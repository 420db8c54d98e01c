package app

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/tenant"
)

func TestUserCreateReadsThePasswordFromStdinAndMakesAnAdmin(t *testing.T) {
	rt := &Runtime{Cfg: config.Defaults(), Log: zap.NewNop()}
	rt.Cfg.DatabaseURL = testenv.PGURL(t)
	defer rt.Close()
	run := func(stdin string, args ...string) (string, error) {
		cmd := newUserCmd(rt)
		var out bytes.Buffer
		cmd.SetArgs(args)
		cmd.SetIn(strings.NewReader(stdin))
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		err := cmd.ExecuteContext(context.Background())
		return out.String(), err
	}
	out, err := run("s3cret-password\n", "create", "--email", "ops@example.com", "--admin")
	if err != nil || !strings.Contains(out, "created admin user ops@example.com") {
		t.Fatalf("create: %v %s", err, out)
	}
	pool, err := rt.Postgres(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	u, err := tenant.New(pool).Authenticate(context.Background(), "ops@example.com", "s3cret-password")
	if err != nil || u.Role != tenant.RoleAdmin {
		t.Fatalf("login as created admin: %v %+v", err, u)
	}
	if _, err := run("", "create", "--email", "x@example.com"); err == nil || !strings.Contains(err.Error(), "no password") {
		t.Fatalf("empty stdin: %v", err)
	}
	if _, err := run("short\n", "create", "--email", "x@example.com"); err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("short password: %v", err)
	}
	if _, err := run("s3cret-password\n", "create", "--email", "OPS@example.com"); err == nil {
		t.Fatal("duplicate email accepted")
	}
	if f := newUserCmd(rt).Commands()[0].Flags().Lookup("password"); f != nil {
		t.Fatal("the password must never be a flag")
	}
}
