package hook

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// The error vocabulary of the service packages (tenant, endpoint, message,
// ...). Callers branch with errors.Is and errors.As; the admin API maps them
// to HTTP once (modules/admin/errors.go) and the web UI once (its fail).
var (
	// ErrNotFound is returned for anything missing or outside the caller's
	// scope; the two are indistinguishable on purpose. NotFound names what.
	ErrNotFound = errors.New("not found")
	// ErrConflict is returned when a change collides with existing data or
	// state (a duplicate email, a plan still in use, a message in flight).
	ErrConflict = errors.New("conflict")
	// ErrForbidden is returned when the caller can see a resource but its
	// role does not allow the change. It is only ever returned after
	// visibility was checked, so it never reveals another tenant's data.
	ErrForbidden = errors.New("forbidden")
)

// NotFound is ErrNotFound naming what was not found: "endpoint ep_x not
// found". Use it only for what the caller named (an id in its request), so
// the message reveals nothing the caller did not already know.
func NotFound(what, id string) error {
	return fmt.Errorf("%s %s %w", what, id, ErrNotFound)
}

// FieldErrors names the fields of a request that are wrong: field name ->
// what is wrong with it. Keys are the request's field names ("url",
// "plan_id", "cursor"), with an index or a key for parts of a list or map
// ("addresses[2]", "headers.X-Token").
type FieldErrors map[string]string

// Invalid is FieldErrors for one field.
func Invalid(field, msg string) FieldErrors { return FieldErrors{field: msg} }

func (e FieldErrors) Error() string {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+e[k])
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Conflict is an ErrConflict with its own message (errors.Is(err,
// ErrConflict) holds; the message does not end in ": conflict").
func Conflict(msg string) error { return &kindError{msg: msg, kind: ErrConflict} }

// Forbidden is an ErrForbidden with its own message.
func Forbidden(msg string) error { return &kindError{msg: msg, kind: ErrForbidden} }

type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }
