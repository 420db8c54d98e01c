package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/signin"
	"github.com/ethhook/ethhook/message"
	"github.com/ethhook/ethhook/tenant"
)

// ErrorBody is the one error shape of the API:
// {"error": {"code": "...", "message": "...", "fields": {...}}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong; Fields names bad request fields.
type ErrorDetail struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// apiError is an error with its HTTP answer.
type apiError struct {
	Status     int
	Code       string
	Message    string
	Fields     map[string]string
	RetryAfter int // seconds, for 429
}

func (e *apiError) Error() string { return e.Message }

func badRequest(msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_request", Message: msg}
}

func fieldError(field, msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_request", Message: field + ": " + msg,
		Fields: map[string]string{field: msg}}
}

var (
	errUnauthorized = &apiError{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "missing or invalid credentials: send Authorization: Bearer <token or ethk_ key>"}
	errNotFound     = &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "not found"}
)

// toAPIError maps any handler error to its answer: the one mapping of the
// service packages' errors (hook's vocabulary and the few sentinels callers
// branch on) to HTTP.
func toAPIError(err error) *apiError {
	var ae *apiError
	var fe hook.FieldErrors
	var he *echo.HTTPError
	var le *signin.LimitError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &le):
		return &apiError{Status: http.StatusTooManyRequests, Code: "rate_limited",
			Message:    fmt.Sprintf("%s; retry after %d s", le.Error(), le.RetryAfterSeconds()),
			RetryAfter: le.RetryAfterSeconds()}
	case errors.Is(err, tenant.ErrBusy):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "busy",
			Message: "too many password checks in progress; retry in a moment", RetryAfter: 1}
	case errors.As(err, &fe):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_request", Message: fe.Error(), Fields: fe}
	case errors.Is(err, hook.ErrNotFound):
		// Always the same words: a missing id and another tenant's answer
		// alike (the error itself names what, for logs and the CLI).
		return errNotFound
	case errors.Is(err, message.ErrPastRetention):
		return &apiError{Status: http.StatusGone, Code: "past_retention", Message: err.Error()}
	case errors.Is(err, tenant.ErrAppLimit):
		return &apiError{Status: http.StatusForbidden, Code: "plan_limit", Message: err.Error()}
	case errors.Is(err, endpoint.ErrLimitReached):
		return &apiError{Status: http.StatusForbidden, Code: "plan_limit", Message: err.Error() + "; an admin can raise the plan"}
	case errors.Is(err, hook.ErrForbidden):
		return &apiError{Status: http.StatusForbidden, Code: "forbidden", Message: forbiddenMessage(err)}
	case errors.Is(err, message.ErrEndpointDisabled):
		// A replay would wait, unsent, until the endpoint is enabled.
		return &apiError{Status: http.StatusConflict, Code: "endpoint_disabled", Message: err.Error() + "; PATCH enabled: true first"}
	case errors.Is(err, hook.ErrConflict):
		return &apiError{Status: http.StatusConflict, Code: "conflict", Message: strings.TrimSuffix(err.Error(), ": "+hook.ErrConflict.Error())}
	case errors.As(err, &he):
		return fromHTTPError(he)
	}
	return nil
}

// forbiddenMessage keeps the reason ("admin role required") but never ids.
func forbiddenMessage(err error) string {
	for _, reason := range []error{tenant.ErrAdminRequired, tenant.ErrKeyCannotManageKeys, tenant.ErrKeyCannotManageApps,
		tenant.ErrPlanAdminOnly, endpoint.ErrAdminOnly} {
		if errors.Is(err, reason) {
			return reason.Error()
		}
	}
	return "not allowed for this caller"
}

func fromHTTPError(he *echo.HTTPError) *apiError {
	msg := http.StatusText(he.Code)
	if m, ok := he.Message.(string); ok && m != "" {
		msg = m
	}
	code := strings.ToLower(strings.ReplaceAll(http.StatusText(he.Code), " ", "_"))
	switch he.Code {
	case http.StatusNotFound:
		return &apiError{Status: he.Code, Code: "not_found", Message: "no such route"}
	case http.StatusMethodNotAllowed:
		code = "method_not_allowed"
	case http.StatusRequestEntityTooLarge:
		code, msg = "body_too_large", "request body is larger than the limit"
	}
	if code == "" {
		code = "error"
	}
	return &apiError{Status: he.Code, Code: code, Message: msg}
}

// errorHandler writes every error in the one shape; unknown errors are
// logged with the request id and answered with a bare 500.
func (m *Module) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	ae := toAPIError(err)
	if ae == nil {
		m.log.Error("request failed", zap.String("request_id", requestID(c)), zap.String("method", c.Request().Method),
			zap.String("route", c.Path()), zap.Error(err))
		ae = &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; see the server log for request id " + requestID(c)}
	}
	if ae.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
	}
	body := ErrorBody{Error: ErrorDetail{Code: ae.Code, Message: ae.Message, Fields: ae.Fields}}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(ae.Status)
		return
	}
	_ = c.JSON(ae.Status, body)
}

// bind decodes the JSON request body into dst strictly: unknown fields,
// wrong types, trailing data and NUL characters are 400s naming the problem.
// bindVisible binds the body into dst only once the caller is known to see
// application appID, so a caller learns nothing about others' ids from
// validation errors.
func (m *Module) bindVisible(c echo.Context, appID string, dst any) error {
	if err := m.store.Visible(c.Request().Context(), scopeOf(c), appID); err != nil {
		return err
	}
	return bind(c, dst)
}

// visibleEndpoint is the ids of an endpoint's route (app_id, endpoint_id),
// or the error when the caller does not see that endpoint; as bindVisible,
// a route checks it before reading its body.
func (m *Module) visibleEndpoint(c echo.Context) (appID, id string, err error) {
	appID, id = c.Param("app_id"), c.Param("endpoint_id")
	_, err = m.endpoints.Get(c.Request().Context(), scopeOf(c), appID, id)
	return appID, id, err
}

func bind(c echo.Context, dst any) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var he *echo.HTTPError
		if errors.As(err, &he) {
			return he
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge)
		}
		return badRequest("could not read the request body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("request body is required: send a JSON object")
	}
	if !utf8.Valid(body) {
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_json", Message: "request body is not valid UTF-8"}
	}
	if bytes.Contains(body, []byte(`\u0000`)) {
		return badRequest("strings must not contain NUL characters")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_json", Message: "unexpected data after the JSON object"}
	}
	return nil
}

func decodeError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_json", Message: fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_json", Message: "invalid JSON: unexpected end of input"}
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return badRequest(fmt.Sprintf("request body must be a JSON object, not %s", te.Value))
		}
		return fieldError(field, fmt.Sprintf("must be %s, not %s", jsonTypeName(te.Type.Kind().String()), te.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fieldError(name, "unknown field")
	}
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_json", Message: "invalid JSON: " + err.Error()}
}

func jsonTypeName(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "an integer"
	case strings.HasPrefix(kind, "float"):
		return "a number"
	case kind == "string":
		return "a string"
	case kind == "bool":
		return "a boolean"
	case kind == "slice", kind == "array":
		return "an array"
	case kind == "map", kind == "struct":
		return "an object"
	}
	return "of another type"
}
