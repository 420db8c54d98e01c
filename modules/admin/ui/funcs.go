package ui

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/ops"
)

var funcs = template.FuncMap{
	"ago":       ago,
	"when":      when,
	"chainName": chainLabel,
	"pretty":    prettyJSON,
	"join":      strings.Join,
	"fifoKeys":  func() []string { return hook.FIFOKeys },
	"opsTypes":  func() []string { return ops.Types },
	"stateClass": func(state string) string {
		switch state {
		case "succeeded":
			return "ok"
		case "failed", "quota_exceeded":
			return "warn"
		case "dead":
			return "bad"
		}
		return "muted"
	},
	"statusClass": func(code *int) string {
		switch {
		case code == nil:
			return "bad"
		case *code >= 200 && *code < 300:
			return "ok"
		case *code >= 500 || *code == 429 || *code == 408:
			return "warn"
		}
		return "bad"
	},
	"deref": func(p *int) string {
		if p == nil {
			return "none"
		}
		return strconv.Itoa(*p)
	},
	"query": func(pairs ...string) template.URL {
		v := url.Values{}
		for i := 0; i+1 < len(pairs); i += 2 {
			if pairs[i+1] != "" {
				v.Set(pairs[i], pairs[i+1])
			}
		}
		return template.URL(v.Encode())
	},
	"pct": func(num, den int64) string {
		if den == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.1f%%", float64(num)*100/float64(den))
	},
	"add": func(a, b int) int { return a + b },
	"contains": func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	},
	"containsU": func(list []uint64, s uint64) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	},
}

// chainLabel is "eth (1)" for a known chain, the id otherwise.
func chainLabel(v any) string {
	var id uint64
	switch x := v.(type) {
	case uint64:
		id = x
	case int64:
		id = uint64(x)
	}
	if n := config.ChainName(id); n != "" {
		return n + " (" + strconv.FormatUint(id, 10) + ")"
	}
	return strconv.FormatUint(id, 10)
}

// ago says how long ago t was, roughly; the exact time is in a title.
func ago(t any) string {
	var tt time.Time
	switch v := t.(type) {
	case time.Time:
		tt = v
	case *time.Time:
		if v == nil {
			return "never"
		}
		tt = *v
	default:
		return ""
	}
	if tt.IsZero() {
		return "never"
	}
	d := time.Since(tt)
	switch {
	case d < 0:
		return "in " + roundDur(-d)
	case d < 5*time.Second:
		return "just now"
	}
	return roundDur(d) + " ago"
}

func roundDur(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// when is an exact UTC timestamp.
func when(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return ""
		}
		return v.UTC().Format("2006-01-02 15:04:05 UTC")
	case *time.Time:
		if v == nil {
			return ""
		}
		return v.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	return ""
}

// prettyJSON indents a JSON document for display.
func prettyJSON(v any) string {
	var raw []byte
	switch x := v.(type) {
	case json.RawMessage:
		raw = x
	case []byte:
		raw = x
	case string:
		raw = []byte(x)
	case map[string]string:
		if x == nil {
			return ""
		}
		b, _ := json.MarshalIndent(x, "", "  ")
		return string(b)
	default:
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		return string(raw)
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	return string(b)
}
