// Package contract checks real HTTP answers and webhook bodies against the
// OpenAPI 3.1 document the admin API serves, with a JSON Schema 2020-12
// validator, so the document cannot drift from what the server does. Tests
// use it (modules/admin, app); nothing in the binary does.
package contract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

const docURL = "http://ethhook.invalid/openapi.json"

// Doc is a loaded OpenAPI document.
type Doc struct {
	raw      map[string]any
	compiler *jsonschema.Compiler
	ops      []op
	mu       sync.Mutex
	cache    map[string]*jsonschema.Schema
	// Seen records "<operationId> <status>" for every checked answer.
	Seen map[string]bool
}

type op struct {
	method, template, id string
	re                   *regexp.Regexp
}

// Options shape Load.
type Options struct {
	// Closed makes every object of components/schemas refuse properties
	// the document does not list (additionalProperties: false where the
	// document says nothing), so a field the server sends but the document
	// lacks fails. The published document stays open (new fields are not
	// breaking changes).
	Closed bool
}

// Load reads an OpenAPI 3.1 document.
func Load(doc []byte, o Options) (*Doc, error) {
	var raw map[string]any
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, fmt.Errorf("decode document: %w", err)
	}
	if v, _ := raw["openapi"].(string); !strings.HasPrefix(v, "3.1") {
		return nil, fmt.Errorf("openapi is %q, want 3.1.x", v)
	}
	if o.Closed {
		comps, _ := raw["components"].(map[string]any)
		schemas, _ := comps["schemas"].(map[string]any)
		for _, s := range schemas {
			closeObjects(s)
		}
	}
	// The validator wants its own decoding of the document (json.Number).
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	res, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(docURL, res); err != nil {
		return nil, err
	}
	d := &Doc{raw: raw, compiler: c, cache: map[string]*jsonschema.Schema{}, Seen: map[string]bool{}}
	paths, _ := raw["paths"].(map[string]any)
	for tmpl, item := range paths {
		pat := regexp.MustCompile(`\\\{[^}]+\\\}`).ReplaceAllString(regexp.QuoteMeta(tmpl), `[^/]+`)
		for method, o := range item.(map[string]any) {
			id, _ := o.(map[string]any)["operationId"].(string)
			d.ops = append(d.ops, op{method: strings.ToUpper(method), template: tmpl, id: id, re: regexp.MustCompile("^" + pat + "$")})
		}
	}
	// Literal segments win over parameters (/auth/me before /{x}/me).
	sort.Slice(d.ops, func(i, j int) bool {
		return strings.Count(d.ops[i].template, "{") < strings.Count(d.ops[j].template, "{")
	})
	return d, nil
}

// closeObjects sets additionalProperties: false on every object schema
// with properties and no additionalProperties of its own.
func closeObjects(v any) {
	switch s := v.(type) {
	case map[string]any:
		if _, ok := s["properties"]; ok {
			if _, set := s["additionalProperties"]; !set {
				s["additionalProperties"] = false
			}
		}
		for k, sub := range s {
			if k == "examples" || k == "example" || k == "enum" || k == "const" {
				continue
			}
			closeObjects(sub)
		}
	case []any:
		for _, sub := range s {
			closeObjects(sub)
		}
	}
}

func pointer(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString("/")
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(p, "~", "~0"), "/", "~1"))
	}
	return b.String()
}

func (d *Doc) compile(ptr string) (*jsonschema.Schema, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.cache[ptr]; ok {
		return s, nil
	}
	s, err := d.compiler.Compile(docURL + "#" + ptr)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", ptr, err)
	}
	d.cache[ptr] = s
	return s, nil
}

func (d *Doc) at(ptr string) any {
	var cur any = d.raw
	for _, p := range strings.Split(ptr, "/")[1:] {
		p = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

// resolve follows a $ref of a response or header to its target pointer.
func (d *Doc) resolve(ptr string) string {
	for i := 0; i < 8; i++ {
		m, _ := d.at(ptr).(map[string]any)
		ref, _ := m["$ref"].(string)
		if !strings.HasPrefix(ref, "#/") {
			return ptr
		}
		ptr = ref[1:]
	}
	return ptr
}

// Operation names the documented operation for method and path, or "".
func (d *Doc) Operation(method, path string) (id, template string) {
	for _, o := range d.ops {
		if o.method == method && o.re.MatchString(path) {
			return o.id, o.template
		}
	}
	return "", ""
}

// CheckResponse validates one answer: its status must be declared for the
// operation (a 500 may fall back on default), its declared headers present,
// and its JSON body valid against the declared schema.
func (d *Doc) CheckResponse(method, path string, status int, header http.Header, body []byte) error {
	id, tmpl := d.Operation(method, path)
	if id == "" {
		return fmt.Errorf("%s %s: no documented operation", method, path)
	}
	base := pointer("paths", tmpl, strings.ToLower(method), "responses")
	resp := base + pointer(strconv.Itoa(status))
	if d.at(resp) == nil {
		if status != http.StatusInternalServerError {
			return fmt.Errorf("%s (%s %s): status %d is not declared: %s", id, method, path, status, body)
		}
		resp = base + "/default"
	}
	resp = d.resolve(resp)
	d.mu.Lock()
	d.Seen[id+" "+strconv.Itoa(status)] = true
	d.mu.Unlock()
	if hs, ok := d.at(resp + "/headers").(map[string]any); ok {
		for name := range hs {
			if header.Get(name) == "" {
				return fmt.Errorf("%s %d: declared header %s missing", id, status, name)
			}
		}
	}
	ctype := header.Get("Content-Type")
	if i := strings.Index(ctype, ";"); i >= 0 {
		ctype = ctype[:i]
	}
	content, _ := d.at(resp + "/content").(map[string]any)
	if len(body) == 0 && status == http.StatusNoContent {
		if content != nil {
			return fmt.Errorf("%s %d: empty body, document declares content", id, status)
		}
		return nil
	}
	if _, ok := content[ctype]; !ok {
		return fmt.Errorf("%s %d: content type %q not declared (%d bytes: %.200s)", id, status, ctype, len(body), body)
	}
	if ctype != "application/json" {
		return nil
	}
	return d.validate(resp+pointer("content", "application/json", "schema"), body, fmt.Sprintf("%s %d", id, status))
}

// CheckWebhook validates a webhook body against webhooks/<name>.
func (d *Doc) CheckWebhook(name string, body []byte) error {
	ptr := pointer("webhooks", name, "post", "requestBody", "content", "application/json", "schema")
	if d.at(ptr) == nil {
		return fmt.Errorf("webhook %q is not documented", name)
	}
	return d.validate(ptr, body, "webhook "+name)
}

// CheckRequest validates a request body against the operation's.
func (d *Doc) CheckRequest(method, path string, body []byte) error {
	id, tmpl := d.Operation(method, path)
	if id == "" {
		return fmt.Errorf("%s %s: no documented operation", method, path)
	}
	return d.validate(pointer("paths", tmpl, strings.ToLower(method), "requestBody", "content", "application/json", "schema"), body, id+" request")
}

func (d *Doc) validate(ptr string, body []byte, what string) error {
	s, err := d.compile(ptr)
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: body is not JSON: %v: %.200s", what, err, body)
	}
	if err := s.Validate(v); err != nil {
		return fmt.Errorf("%s: %v\nbody: %.2000s", what, err, body)
	}
	return nil
}
