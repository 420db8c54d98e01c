package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// otherEnv are ETHHOOK_ variables that are not settings but are read by a
// command (registered with KnownEnv) or by the test tooling (prefixes), so
// they get no "unknown variable" warning.
var (
	otherEnv       = map[string]bool{}
	otherEnvPrefix = []string{"ETHHOOK_TEST_", "ETHHOOK_DELIVER_CHILD", "ETHHOOK_CHROMIUM", "ETHHOOK_ARTIFACTS", "ETHHOOK_README_"}
)

// KnownEnv registers environment variables a command reads itself
// (ETHHOOK_LISTEN_SECRET), so Load does not warn that they are unknown.
func KnownEnv(names ...string) {
	for _, n := range names {
		otherEnv[n] = true
	}
}

// secretTags maps each key whose field is tagged secret to the tag value
// ("true": never shown; "password", "url": shown with credentials redacted).
var secretTags = func() map[string]string {
	out := map[string]string{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for key, f := range settings(t) {
			if s := f.Tag.Get("secret"); s != "" {
				out[prefix+key] = s
			}
			if isSection(f.Type) {
				walk(f.Type, prefix+key+".")
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	return out
}()

// shown is a value as an error message may show it: secrets masked.
func shown(key, val string) string {
	switch secretTags[key] {
	case "":
		return val
	case "true":
		return "********"
	default:
		return redactPassword(val)
	}
}

// sourceOf says where key's value came from, as the user wrote it:
// "--metrics-port=abc", "METRICS_PORT=abc" or "ethhook.yaml"; "" for a default.
func sourceOf(key string, v *viper.Viper, opts Options, file string) string {
	if opts.Flags != nil {
		for name, k := range opts.FlagKeys {
			if f := opts.Flags.Lookup(name); k == key && f != nil && f.Changed {
				return fmt.Sprintf("--%s=%s", name, shown(key, f.Value.String()))
			}
		}
	}
	for _, env := range EnvNames(key) {
		if val, ok := os.LookupEnv(env); ok {
			return fmt.Sprintf("%s=%s", env, shown(key, val))
		}
	}
	if file != "" && v.InConfig(key) {
		return file
	}
	return ""
}

// valueSource names a bad value: "ETHHOOK_DELIVERY_TIMEOUT=abc (delivery.timeout)",
// "--metrics-port=abc" or "ethhook.yaml: delivery.timeout: abc".
func valueSource(key string, raw any, v *viper.Viper, opts Options, file string) string {
	shownRaw := shown(key, fmt.Sprint(raw))
	switch src := sourceOf(key, v, opts, file); {
	case src == file && src != "":
		return fmt.Sprintf("%s: %s: %s", file, key, shownRaw)
	case strings.HasPrefix(src, "--"):
		return src
	case src != "":
		return fmt.Sprintf("%s (%s)", src, key)
	}
	return fmt.Sprintf("%s=%s", key, shownRaw)
}

// annotate adds to each line of a validation error that starts with a
// setting's key where its value came from, so "delivery.timeout: must be
// positive" reads "delivery.timeout (ETHHOOK_DELIVERY_TIMEOUT=-5s): ...".
func annotate(err error, source func(key string) string) error {
	if err == nil {
		return nil
	}
	lines := strings.Split(err.Error(), "\n")
	changed := false
	for i, line := range lines {
		const lead = "invalid config: " // Validate's, on the first line
		prefix := ""
		if strings.HasPrefix(line, lead) {
			prefix, line = lead, strings.TrimPrefix(line, lead)
		}
		end := strings.IndexAny(line, " :")
		if end <= 0 {
			continue
		}
		key := line[:end]
		src := source(key)
		if src == "" || secretTags[key] == "true" {
			continue // a default, or a secret (whose message names its variable)
		}
		if name, val, _ := strings.Cut(src, "="); strings.Contains(line, name) && strings.Contains(line, val) {
			continue // the message names both already
		}
		rest := line[end:]
		if strings.HasPrefix(rest, " (") { // "key (ENV_NAME): ...": the name, now with its value
			if close := strings.Index(rest, ")"); close > 0 {
				rest = rest[close+1:]
			}
		}
		lines[i] = prefix + key + " (" + src + ")" + rest
		changed = true
	}
	if !changed {
		return err
	}
	return errors.New(strings.Join(lines, "\n"))
}

// checkValues decodes every setting on its own, so a value that is not of
// its type is reported with where it came from and what it was, instead of
// mapstructure's "'metrics_port' cannot parse value as 'int'".
func checkValues(v *viper.Viper, opts Options, file string, decode mapstructure.DecodeHookFunc) error {
	var errs []error
	keys := leaves(reflect.ValueOf(Defaults()), "")
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, key := range names {
		raw := v.Get(key)
		target := reflect.New(reflect.TypeOf(keys[key]))
		dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{DecodeHook: decode, WeaklyTypedInput: true, Result: target.Interface()})
		if err != nil {
			return err
		}
		if err := dec.Decode(raw); err != nil {
			errs = append(errs, fmt.Errorf("%s: want %s", valueSource(key, raw, v, opts, file), typeName(target.Elem().Type())))
		}
	}
	if file != "" {
		errs = append(errs, unknownFileKeys(v, file, names)...)
	}
	return errors.Join(errs...)
}

func typeName(t reflect.Type) string {
	switch {
	case t.String() == "time.Duration":
		return "a duration like 5s, 2m or 1h30m"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.Slice:
		return "a list (YAML list, or comma-separated)"
	}
	return "a " + t.String()
}

// unknownFileKeys reports the keys of the YAML file that are no setting
// (a typo), with the nearest setting.
func unknownFileKeys(v *viper.Viper, file string, known []string) []error {
	fv := viper.New()
	fv.SetConfigFile(file)
	fv.SetConfigType("yaml")
	if fv.ReadInConfig() != nil {
		return nil // v read it already; nothing new to say
	}
	isKnown := map[string]bool{}
	sections := map[string]bool{}
	for _, k := range known {
		isKnown[k] = true
		for i := range k {
			if k[i] == '.' {
				sections[k[:i]] = true
			}
		}
	}
	var errs []error
	for _, k := range fv.AllKeys() {
		if isKnown[k] || k == "chains" || strings.HasPrefix(k, "chains.") {
			continue
		}
		if sections[k] {
			errs = append(errs, fmt.Errorf("%s: %s: is a section of settings, not a value", file, k))
			continue
		}
		msg := fmt.Sprintf("%s: %s: %v: no such setting", file, k, fv.Get(k))
		if near := nearest(k, known); near != "" {
			msg += "; did you mean " + near + "?"
		}
		errs = append(errs, errors.New(msg))
	}
	return errs
}

// EnvWarnings names the ETHHOOK_ variables of environ that no setting or
// command reads (a typo is silently ignored otherwise), with the nearest
// valid name.
func EnvWarnings(environ []string) []string {
	known := map[string]bool{}
	var names []string
	for k := range Keys() {
		for _, e := range EnvNames(k) {
			known[e] = true
			names = append(names, e)
		}
	}
	for n := range otherEnv {
		known[n] = true
		names = append(names, n)
	}
	sort.Strings(names)
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "ETHHOOK_") || known[name] || hasAnyPrefix(name, otherEnvPrefix) {
			continue
		}
		msg := name + " is set but is not a setting, so it is ignored"
		if near := nearest(name, names); near != "" {
			msg += "; did you mean " + near + "?"
		}
		out = append(out, msg+" (`ethhook config env` lists every variable)")
	}
	sort.Strings(out)
	return out
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// nearest is the candidate closest to s in edit distance, when it is close
// enough to be a typo of it (at most a third of s's length, at least 2).
func nearest(s string, candidates []string) string {
	best, bestD := "", max(2, len(s)/3)+1
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
