package message

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ethhook/ethhook/hook"
)

// Arg is one condition on a decoded argument: decoded.args.<Name> = Value.
type Arg struct {
	Name, Value string
}

// Bounds of a search by decoded argument. The payload is not indexed by
// argument (an index over every log's arguments would tax each insert of
// the hottest table), so such a search reads the application's messages of
// a time window through (app_id, created_at) and the time partitions: the
// window is what bounds it. At most MaxArgs conditions, names of at most
// 64 identifier characters, values of at most 256 bytes.
const (
	MaxArgs       = 3
	MaxArgValue   = 256
	ArgsWindow    = 7 * 24 * time.Hour // the longest since..until of a search by argument
	DefaultWindow = 24 * time.Hour     // since, when a search by argument gives none
)

var argName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// ParseArg reads "name:value" (the API's arg query parameter).
func ParseArg(s string) (Arg, error) {
	name, value, ok := strings.Cut(s, ":")
	if !ok {
		return Arg{}, hook.Invalid("arg", fmt.Sprintf("%q: want name:value, e.g. to:0xabc", s))
	}
	return Arg{Name: strings.TrimSpace(name), Value: strings.TrimSpace(value)}, nil
}

// argsWhere adds f.Args to q, bounding the window (it sets f.Since when
// none is given).
func argsWhere(q *query, f *Filter, now time.Time) error {
	if len(f.Args) == 0 {
		return nil
	}
	if len(f.Args) > MaxArgs {
		return hook.Invalid("arg", fmt.Sprintf("at most %d conditions, got %d", MaxArgs, len(f.Args)))
	}
	until := f.Until
	if until.IsZero() {
		until = now
	}
	if f.Since.IsZero() {
		f.Since = until.Add(-DefaultWindow)
		q.where("m.created_at >= %s", f.Since)
	}
	if until.Sub(f.Since) > ArgsWindow {
		return hook.Invalid("since", fmt.Sprintf("a search by arg covers at most %s: since %s is %s before until",
			ArgsWindow, f.Since.UTC().Format(time.RFC3339), until.Sub(f.Since).Round(time.Second)))
	}
	for _, a := range f.Args {
		switch {
		case !argName.MatchString(a.Name):
			return hook.Invalid("arg", fmt.Sprintf("name %q: want an argument name (letters, digits, _; at most 64)", a.Name))
		case len(a.Value) > MaxArgValue:
			return hook.Invalid("arg", fmt.Sprintf("%s: value longer than %d bytes", a.Name, MaxArgValue))
		case strings.HasPrefix(a.Value, "0x") || strings.HasPrefix(a.Value, "0X"):
			q.where("lower(m.payload::jsonb #>> ARRAY['decoded', 'args', %s]) = %s", a.Name, strings.ToLower(a.Value))
		default:
			q.where("m.payload::jsonb #>> ARRAY['decoded', 'args', %s] = %s", a.Name, a.Value)
		}
	}
	return nil
}
