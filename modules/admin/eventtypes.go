package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/labstack/echo/v4"

	"github.com/ethhook/ethhook/decode"
	"github.com/ethhook/ethhook/hook"
)

// The event-type catalogue: what an endpoint can receive decoded, with a
// JSON Schema of each event's `decoded.args`, so receivers can generate
// types. Built-in events first, then the events of the caller's endpoints'
// ABIs and declarations (their own applications only).
type (
	eventTypeView struct {
		Name      string `json:"name"`
		Signature string `json:"signature"`
		Topic0    string `json:"topic0"`
		// Source is builtin (decoded with no ABI) or endpoint (from the
		// ABI or event declarations of EndpointID).
		Source     string     `json:"source"`
		AppID      string     `json:"app_id,omitempty"`
		EndpointID string     `json:"endpoint_id,omitempty"`
		Args       []eventArg `json:"args"`
		// ArgsSchema is the JSON Schema of the payload's decoded.args.
		ArgsSchema map[string]any `json:"args_schema"`
	}
	eventArg struct {
		Name    string `json:"name"`
		Type    string `json:"type"`
		Indexed bool   `json:"indexed"`
	}
)

func init() {
	fieldDocs["admin.eventTypeView.source"] = enumOf([]any{"builtin", "endpoint"})
	fieldDocs["admin.eventTypeView.topic0"] = map[string]any{"pattern": "^0x[0-9a-f]{64}$"}
	fieldDocs["admin.eventTypeView.args_schema"] = map[string]any{"description": "JSON Schema (2020-12) of decoded.args in the webhook payload"}
}

var (
	hex32   = map[string]any{"type": "string", "pattern": "^0x[0-9a-f]{64}$", "description": "keccak256 of the value (an indexed dynamic argument)"}
	decimal = map[string]any{"type": "string", "pattern": "^-?[0-9]+$", "description": "decimal integer"}
)

// argSchema is the JSON Schema of one decoded argument (see decode's
// package comment for the forms).
func argSchema(t abi.Type, indexed bool) map[string]any {
	if indexed {
		switch t.T {
		case abi.StringTy, abi.BytesTy, abi.SliceTy, abi.ArrayTy, abi.TupleTy:
			return hex32
		}
	}
	switch t.T {
	case abi.IntTy, abi.UintTy:
		return decimal
	case abi.AddressTy:
		return map[string]any{"type": "string", "pattern": "^0x[0-9a-f]{40}$"}
	case abi.BoolTy:
		return map[string]any{"type": "boolean"}
	case abi.StringTy:
		return map[string]any{"type": "string"}
	case abi.SliceTy:
		return map[string]any{"type": "array", "items": argSchema(*t.Elem, false)}
	case abi.ArrayTy:
		return map[string]any{"type": "array", "items": argSchema(*t.Elem, false), "minItems": t.Size, "maxItems": t.Size}
	case abi.TupleTy:
		props := map[string]any{}
		req := []any{}
		for i, el := range t.TupleElems {
			name := t.TupleRawNames[i]
			if name == "" {
				name = strconv.Itoa(i)
			}
			props[name] = argSchema(*el, false)
			req = append(req, name)
		}
		return map[string]any{"type": "object", "properties": props, "required": req}
	}
	return map[string]any{"type": "string", "pattern": "^0x[0-9a-f]*$"} // bytes, bytesN, hashes
}

func eventType(e *decode.Event, source string) eventTypeView {
	v := eventTypeView{Name: e.Name, Signature: e.Signature, Topic0: e.Topic0, Source: source, Args: []eventArg{}}
	props := map[string]any{}
	req := []any{}
	for _, a := range e.Args {
		v.Args = append(v.Args, eventArg{Name: a.Name, Type: a.Type.String(), Indexed: a.Indexed})
		props[a.Name] = argSchema(a.Type, a.Indexed)
		req = append(req, a.Name)
	}
	v.ArgsSchema = map[string]any{"type": "object", "properties": props, "required": req}
	return v
}

// endpointEvents lists the events an endpoint's filter defines: its ABI's
// and its full declarations ("event X(...)"); bare names and signatures
// resolve to the built-in set and are listed there.
func endpointEvents(f hook.Filter) []*decode.Event {
	var out []*decode.Event
	if len(f.ABI) > 0 {
		if evs, err := decode.ParseABI(f.ABI); err == nil {
			out = append(out, evs...)
		}
	}
	for _, d := range f.Events {
		if strings.HasPrefix(strings.TrimSpace(d), "event ") {
			if e, err := decode.ParseEvent(d); err == nil {
				out = append(out, e)
			}
		}
	}
	return out
}

func (m *Module) handleEventTypes(c echo.Context) error {
	cursor, limit, err := page(c, 50)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	scope := scopeOf(c)
	appID := c.QueryParam("app_id")
	if appID != "" {
		if err := m.store.Visible(ctx, scope, appID); err != nil {
			return err
		}
	}
	var out []eventTypeView
	if cursor == "" {
		all := decode.Builtin().All()
		sort.Slice(all, func(i, j int) bool {
			if all[i].Signature != all[j].Signature {
				return all[i].Signature < all[j].Signature
			}
			return all[i].Topics() < all[j].Topics()
		})
		for _, e := range all {
			out = append(out, eventType(e, "builtin"))
		}
	}
	// One page is up to limit endpoints of the caller's applications, by id.
	rows, err := m.pool.Query(ctx, `SELECT e.id, e.app_id, e.filter FROM endpoints e
		WHERE ($1 OR e.app_id = $2 OR e.app_id IN (SELECT app_id FROM application_members WHERE user_id = $3))
		  AND ($4 = '' OR e.app_id = $4) AND e.id > $5
		ORDER BY e.id LIMIT $6`, scope.Admin, scope.AppID, scope.UserID, appID, cursor, limit+1)
	if err != nil {
		return fmt.Errorf("list endpoints for event types: %w", err)
	}
	defer rows.Close()
	n, next, last := 0, "", ""
	for rows.Next() {
		var id, app string
		var raw []byte
		if err := rows.Scan(&id, &app, &raw); err != nil {
			return fmt.Errorf("read endpoint for event types: %w", err)
		}
		if n++; n > limit {
			next = last
			break
		}
		last = id
		var f hook.Filter
		if json.Unmarshal(raw, &f) != nil {
			continue
		}
		for _, e := range endpointEvents(f) {
			v := eventType(e, "endpoint")
			v.AppID, v.EndpointID = app, id
			out = append(out, v)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list endpoints for event types: %w", err)
	}
	return c.JSON(http.StatusOK, listOf(out, next))
}
