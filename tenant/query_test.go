package tenant

import (
	"strconv"
	"testing"

	"github.com/ethhook/ethhook/hook"
)

func TestScopeCondLimitsTheApplicationColumnToTheScope(t *testing.T) {
	for _, c := range []struct {
		scope hook.Scope
		want  string
		args  []any
	}{
		{hook.Operator, "TRUE", nil},
		{hook.Scope{}, "FALSE", nil},
		{hook.Scope{AppID: "app_a"}, "x.app_id = $1", []any{"app_a"}},
		{hook.Scope{UserID: "usr_u"}, "x.app_id IN (SELECT app_id FROM application_members WHERE user_id = $1)", []any{"usr_u"}},
		{hook.Scope{AppID: "app_a", UserID: "usr_u"},
			"x.app_id = $1 AND x.app_id IN (SELECT app_id FROM application_members WHERE user_id = $2)", []any{"app_a", "usr_u"}},
	} {
		var args []any
		got := ScopeCond(c.scope, "x.app_id", func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) })
		if got != c.want || len(args) != len(c.args) {
			t.Errorf("%+v: %q %v, want %q %v", c.scope, got, args, c.want, c.args)
		}
		for i := range args {
			if args[i] != c.args[i] {
				t.Errorf("%+v: args %v, want %v", c.scope, args, c.args)
			}
		}
	}
}
