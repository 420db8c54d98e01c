package admin

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// OpenAPIPath turns an echo path (/applications/:app_id) into an OpenAPI
// one (/applications/{app_id}).
func OpenAPIPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, ":") {
			parts[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

// OpenAPI returns the OpenAPI 3 document of the API, built from the same
// route table that registers the handlers.
func (m *Module) OpenAPI() map[string]any {
	g := &schemaGen{schemas: map[string]any{}}
	paths := map[string]any{}
	for _, r := range m.routes {
		p := OpenAPIPath(Prefix + r.path)
		item, _ := paths[p].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[p] = item
		}
		var params []any
		for _, seg := range strings.Split(r.path, "/") {
			if strings.HasPrefix(seg, ":") {
				params = append(params, map[string]any{"name": seg[1:], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
			}
		}
		for _, q := range r.query {
			params = append(params, map[string]any{"name": q.name, "in": "query", "required": false,
				"description": q.desc, "schema": map[string]any{"type": q.typ}})
		}
		op := map[string]any{
			"operationId": r.id,
			"summary":     r.summary,
			"tags":        []string{r.tag},
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if r.body != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(r.body))}}}
		}
		errResp := map[string]any{"description": "error", "content": map[string]any{
			"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(ErrorBody{}))}}}
		resps := map[string]any{"default": errResp}
		ok := map[string]any{"description": http.StatusText(r.status)}
		if r.resp != nil {
			content := map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(r.resp))}}
			if r.csv {
				content["text/csv"] = map[string]any{"schema": map[string]any{"type": "string"}}
			}
			ok["content"] = content
		}
		resps[strconv.Itoa(r.status)] = ok
		if r.body != nil {
			resps["400"] = errResp
		}
		if r.auth != authNone {
			op["security"] = []any{map[string]any{"bearerAuth": []string{}}}
			resps["401"] = errResp
			resps["429"] = errResp
			// forbidden, or password_change_required for an account that
			// must change its password first.
			resps["403"] = errResp
		} else {
			op["security"] = []any{}
		}
		if r.checksPassword {
			resps["429"] = errResp // rate_limited: sign-in limits
			resps["503"] = errResp // busy: too many password checks at once
		}
		if strings.Contains(r.path, ":") {
			resps["404"] = errResp
		}
		op["responses"] = resps
		item[strings.ToLower(r.method)] = op
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "EthHook admin API",
			"version":     "1",
			"description": "Webhooks for EVM contract events. Authenticate with `Authorization: Bearer <token>` where the token is a JWT from POST /api/v1/auth/login or an application API key (ethk_...). Lists take cursor and limit and answer {data, next_cursor}. Errors are {\"error\": {\"code\", \"message\", \"fields\"}}; codes: invalid_request, invalid_json, unauthorized, invalid_credentials, forbidden, password_change_required (the account, such as the first-run bootstrap admin, must change its password with POST /api/v1/auth/password before anything else), plan_limit, not_found, conflict, rate_limited, busy (503: too many password checks at once; retry), body_too_large, method_not_allowed, internal. Only users create and revoke API keys; an API key cannot.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas": g.schemas,
			"securitySchemes": map[string]any{
				"bearerAuth": map[string]any{"type": "http", "scheme": "bearer", "description": "login JWT or ethk_ API key"},
			},
		},
	}
}

func (m *Module) handleOpenAPI(c echo.Context) error {
	return c.JSON(http.StatusOK, m.openapi)
}

// schemaGen derives JSON schemas from Go types via their json tags.
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

func (g *schemaGen) schema(t reflect.Type) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{}
	}
	switch t.Kind() {
	case reflect.Pointer:
		s := g.schema(t.Elem())
		if _, ref := s["$ref"]; ref {
			return map[string]any{"allOf": []any{s}, "nullable": true}
		}
		out := map[string]any{"nullable": true}
		for k, v := range s {
			out[k] = v
		}
		return out
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string"}
		}
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Struct:
		name := schemaName(t)
		if t.Name() == "" {
			return g.object(t)
		}
		if _, done := g.schemas[name]; !done {
			g.schemas[name] = map[string]any{} // placeholder against recursion
			g.schemas[name] = g.object(t)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	g.fields(t, props, &required)
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

func (g *schemaGen) fields(t reflect.Type, props map[string]any, required *[]string) {
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
			g.fields(ft, props, required)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = g.schema(f.Type)
		if !strings.Contains(opts, "omitempty") && f.Type.Kind() != reflect.Pointer {
			*required = append(*required, name)
		}
	}
}
