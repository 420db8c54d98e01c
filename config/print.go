package config

import (
	"reflect"
	"time"

	"go.yaml.in/yaml/v3"
)

// Masked is the effective configuration as plain maps and lists keyed by
// the config keys, secrets masked as in MaskedYAML (for JSON output).
func (c Config) Masked() any { return masked(reflect.ValueOf(c)) }

// MaskedYAML renders the effective configuration as YAML with secrets
// masked: passwords and API-key paths in URLs, keys and JWT secrets.
func (c Config) MaskedYAML() ([]byte, error) {
	return yaml.Marshal(masked(reflect.ValueOf(c)))
}

func masked(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Struct:
		if d, ok := v.Interface().(time.Duration); ok {
			return d.String()
		}
		m := map[string]any{}
		for key, f := range settings(v.Type()) {
			m[key] = maskField(v.Field(f.Index[0]), f.Tag.Get("secret"))
		}
		return m
	case reflect.Slice:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = masked(v.Index(i))
		}
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return masked(v.Elem())
	case reflect.Int64:
		if d, ok := v.Interface().(time.Duration); ok {
			return d.String()
		}
	}
	return v.Interface()
}

func maskField(v reflect.Value, how string) any {
	switch how {
	case "true":
		if v.String() == "" {
			return ""
		}
		return "********"
	case "password":
		return redactPassword(v.String())
	case "url":
		if v.Kind() == reflect.Slice {
			out := make([]string, v.Len())
			for i := range out {
				out[i] = redactURL(v.Index(i).String())
			}
			return out
		}
		if v.String() == "" {
			return ""
		}
		return redactURL(v.String())
	}
	return masked(v)
}
