package config

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestEveryConfigErrorNamesTheVariableAndTheBadValue(t *testing.T) {
	for _, c := range []struct {
		name string
		env  map[string]string
		file string
		flag string // --metrics-port value
		want string
	}{
		{"duration from env", map[string]string{"ETHHOOK_DELIVERY_TIMEOUT": "abc"}, "", "", "ETHHOOK_DELIVERY_TIMEOUT=abc (delivery.timeout): want a duration"},
		{"legacy alias", map[string]string{"METRICS_PORT": "abc"}, "", "", "METRICS_PORT=abc (metrics_port): want a whole number"},
		{"flag", nil, "", "abc", "--metrics-port=abc: want a whole number"},
		{"file value", nil, "delivery:\n  timeout: soon\n", "", "ethhook.yaml: delivery.timeout: soon: want a duration"},
		{"file typo", nil, "delivery:\n  timeuot: 5s\n", "", "ethhook.yaml: delivery.timeuot: 5s: no such setting; did you mean delivery.timeout?"},
		{"file section as value", nil, "delivery: 5\n", "", "ethhook.yaml: delivery: is a section of settings, not a value"},
		{"validation from env", map[string]string{"ETHHOOK_DELIVERY_TIMEOUT": "-5s"}, "", "", "delivery.timeout (ETHHOOK_DELIVERY_TIMEOUT=-5s): must be positive"},
		{"password redacted", map[string]string{"ETHHOOK_DATABASE_URL": "mysql://u:hunter2@db/x"}, "", "", "database_url (ETHHOOK_DATABASE_URL=mysql://u:***@db/x): must be a postgres:// URL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			opts := Options{}
			if c.file != "" {
				opts.File = writeFile(t, c.file)
			}
			if c.flag != "" {
				fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
				fs.String("metrics-port", "9090", "")
				if err := fs.Parse([]string{"--metrics-port", c.flag}); err != nil {
					t.Fatal(err)
				}
				opts.Flags, opts.FlagKeys = fs, map[string]string{"metrics-port": "metrics_port"}
			}
			_, err := Load(opts)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if opts.File != "" {
				msg = strings.ReplaceAll(msg, opts.File, "ethhook.yaml")
			}
			if !strings.Contains(msg, c.want) {
				t.Fatalf("error %q\ndoes not contain %q", msg, c.want)
			}
			if strings.Contains(msg, "hunter2") || strings.Contains(msg, "cannot parse value") {
				t.Fatalf("error %q shows a password or mapstructure's words", msg)
			}
		})
	}
}

func TestUnknownEthhookVariablesGetAWarningWithTheNearestName(t *testing.T) {
	KnownEnv("ETHHOOK_LISTEN_SECRET")
	got := EnvWarnings([]string{
		"ETHHOOK_DELIVERY_TIMOUT=5s",        // typo
		"ETHHOOK_ADMIN_DEFAULT_PLAN=free",   // a setting
		"ETHHOOK_JWT_SECRET=x",              // an alias
		"ETHHOOK_LISTEN_SECRET=whsec_x",     // read by a command
		"ETHHOOK_TEST_DATABASE_URL=x",       // test tooling
		"ETHHOOK_SOMETHING_ELSE_ENTIRELY=1", // nothing near
		"PATH=/bin",
	})
	if len(got) != 2 {
		t.Fatalf("warnings %q, want 2", got)
	}
	if !strings.Contains(got[0], "ETHHOOK_DELIVERY_TIMOUT is set but is not a setting") || !strings.Contains(got[0], "did you mean ETHHOOK_DELIVERY_TIMEOUT?") {
		t.Fatalf("typo warning %q", got[0])
	}
	if !strings.Contains(got[1], "ETHHOOK_SOMETHING_ELSE_ENTIRELY") || strings.Contains(got[1], "did you mean") {
		t.Fatalf("far-off warning %q", got[1])
	}
}
