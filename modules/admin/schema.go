package admin

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"time"
)

// direction says which side of the wire a schema describes. The same Go
// type reads differently on each: the server always writes a field without
// omitempty (so a response schema requires it), while a client may leave
// out any field the handler does not insist on (so a request schema
// requires only those listed in requestRequired).
type direction int

const (
	inResponse direction = iota
	inRequest
)

// schemaGen derives JSON Schema 2020-12 (OpenAPI 3.1) from Go types through
// their json tags, so a field another change adds to a request or response
// struct appears in the document without touching the generator. What a
// json tag cannot say (enums, bounds, required request fields, examples) is
// in openapi_docs.go, keyed by "<package>.<Type>.<json name>".
type schemaGen struct {
	schemas map[string]any
}

var (
	timeType = reflect.TypeOf(time.Time{})
	rawType  = reflect.TypeOf(json.RawMessage{})
	nonWord  = regexp.MustCompile(`[^A-Za-z0-9]+`)
)

// schemaName names a type for components/schemas: List[...tenant.Plan]
// becomes PlanList.
func schemaName(t reflect.Type) string {
	n := t.Name()
	if i := strings.Index(n, "["); i >= 0 {
		inner := n[i+1 : len(n)-1]
		if j := strings.LastIndex(inner, "."); j >= 0 {
			inner = inner[j+1:]
		}
		n = inner + n[:i]
	}
	n = nonWord.ReplaceAllString(n, "")
	if n == "" {
		return "Object"
	}
	return strings.ToUpper(n[:1]) + n[1:]
}

// typeKey is the registry key prefix of a named type: "hook.Endpoint".
func typeKey(t reflect.Type) string {
	pkg := t.PkgPath()
	if i := strings.LastIndex(pkg, "/"); i >= 0 {
		pkg = pkg[i+1:]
	}
	n := t.Name()
	if i := strings.Index(n, "["); i >= 0 {
		n = n[:i]
	}
	return pkg + "." + n
}

// nullable widens s to also accept null: a type array for plain schemas,
// anyOf for references (a $ref cannot carry a type of its own).
func nullable(s map[string]any) map[string]any {
	if _, ref := s["$ref"]; ref {
		return map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}}}
	}
	out := map[string]any{}
	for k, v := range s {
		out[k] = v
	}
	switch typ := s["type"].(type) {
	case string:
		out["type"] = []any{typ, "null"}
	case nil:
		// any value, null included
	}
	if enum, ok := s["enum"].([]any); ok {
		out["enum"] = append(append([]any{}, enum...), nil)
	}
	return out
}

func (g *schemaGen) schema(t reflect.Type, d direction) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{} // any JSON value
	}
	switch t.Kind() {
	case reflect.Pointer:
		return nullable(g.schema(t.Elem(), d))
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string"}
		}
		return map[string]any{"type": "array", "items": g.schema(t.Elem(), d)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem(), d)}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		// Requests inline their structs: a type read on both sides (a
		// filter) has different required fields on each, and one shared
		// component would be wrong for one of them.
		if t.Name() == "" || d == inRequest {
			return g.object(t, d)
		}
		name := schemaName(t)
		if _, done := g.schemas[name]; !done {
			g.schemas[name] = map[string]any{} // placeholder against recursion
			g.schemas[name] = g.object(t, d)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

func (g *schemaGen) object(t reflect.Type, d direction) map[string]any {
	props := map[string]any{}
	var required []string
	g.fields(t, d, props, &required)
	s := map[string]any{"type": "object", "properties": props}
	if d == inRequest {
		// bind refuses unknown fields; responses may grow new ones.
		s["additionalProperties"] = false
	}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

func (g *schemaGen) fields(t reflect.Type, d direction, props map[string]any, required *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			g.fields(ft, d, props, required)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		key := typeKey(t) + "." + name
		omit := strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")
		var s map[string]any
		switch {
		case f.Type.Kind() != reflect.Pointer:
			s = g.schema(f.Type, d)
		case d == inRequest && requestRequired[key]:
			// Required: null is refused like a missing value.
			s = g.schema(f.Type.Elem(), d)
		case d == inResponse && omit:
			// A nil pointer is left out, so a present one is never null.
			s = g.schema(f.Type.Elem(), d)
		default:
			s = g.schema(f.Type, d)
		}
		props[name] = withDocs(s, fieldDocs[key])
		switch {
		case d == inRequest && requestRequired[key]:
			*required = append(*required, name)
		case d == inResponse && !omit:
			*required = append(*required, name)
		}
	}
}

// withDocs adds a field's documented keywords to its schema. A reference
// is wrapped in allOf, since the keywords describe this use of the type.
func withDocs(s map[string]any, docs map[string]any) map[string]any {
	if len(docs) == 0 {
		return s
	}
	if _, ref := s["$ref"]; ref {
		s = map[string]any{"allOf": []any{s}}
	}
	out := map[string]any{}
	for k, v := range s {
		out[k] = v
	}
	for k, v := range docs {
		if k == "enum" {
			if ty, ok := out["type"].([]any); ok && len(ty) == 2 && ty[1] == "null" {
				v = append(append([]any{}, v.([]any)...), nil)
			}
		}
		out[k] = v
	}
	return out
}
