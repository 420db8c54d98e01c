package app

import "go.uber.org/zap/zapcore"

// onceKeys are the fields a log line carries at most once. The app tags
// every module's logger with "module" (logFor); modules do not tag their
// own. Should one do it again anyway, JSON with a key twice is ambiguous
// (most parsers keep the last, some refuse it), so the first one set wins.
var onceKeys = map[string]bool{"module": true}

// onceCore drops a onceKeys field the logger already carries.
type onceCore struct {
	zapcore.Core
	has map[string]bool // onceKeys set by With, never mutated after creation
}

func dedupFields(c zapcore.Core) zapcore.Core { return &onceCore{Core: c} }

func (c *onceCore) filter(fields []zapcore.Field) ([]zapcore.Field, map[string]bool) {
	has := c.has
	var out []zapcore.Field
	for i, f := range fields {
		if !onceKeys[f.Key] {
			if out != nil {
				out = append(out, f)
			}
			continue
		}
		if has[f.Key] {
			if out == nil {
				out = append(make([]zapcore.Field, 0, len(fields)), fields[:i]...)
			}
			continue
		}
		if out != nil {
			out = append(out, f)
		}
		next := make(map[string]bool, len(has)+1)
		for k := range has {
			next[k] = true
		}
		next[f.Key] = true
		has = next
	}
	if out == nil {
		out = fields
	}
	return out, has
}

func (c *onceCore) With(fields []zapcore.Field) zapcore.Core {
	fields, has := c.filter(fields)
	return &onceCore{Core: c.Core.With(fields), has: has}
}

func (c *onceCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *onceCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	fields, _ = c.filter(fields)
	return c.Core.Write(e, fields)
}
