package ui

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/message"
	"github.com/ethhook/ethhook/sign"
)

func (u *UI) endpointRoutes(a *routes) {
	a.GET("/apps/:app/endpoints", u.endpointsPage)
	a.GET("/apps/:app/endpoints/new", u.newEndpointPage)
	a.POST("/apps/:app/endpoints", u.createEndpoint)
	a.POST("/apps/:app/abi-events", u.abiEventsPart)
	a.GET("/apps/:app/endpoints/:ep", u.endpointPage)
	a.POST("/apps/:app/endpoints/:ep", u.updateEndpoint)
	a.POST("/apps/:app/endpoints/:ep/enable", u.enableEndpoint)
	a.POST("/apps/:app/endpoints/:ep/disable", u.disableEndpoint)
	a.POST("/apps/:app/endpoints/:ep/delete", u.deleteEndpoint)
	a.POST("/apps/:app/endpoints/:ep/secret", u.revealSecret)
	a.POST("/apps/:app/endpoints/:ep/secret/rotate", u.rotateSecret)
	a.POST("/apps/:app/endpoints/:ep/test", u.sendTest)
}

type endpointsData struct {
	Endpoints []hook.Endpoint
	Next      string
	Quota     *quotaBanner
}

// quotaBanner tells an application's pages that its quota is reached.
type quotaBanner struct {
	Deliveries, Quota, Held, InFlight int64
}

func (u *UI) quotaBanner(c echo.Context, appID string) *quotaBanner {
	st, err := u.tenant.Usage(c.Request().Context(), sess(c).Scope(), appID)
	if err != nil || !st.Exceeded {
		return nil
	}
	return &quotaBanner{Deliveries: st.Deliveries, Quota: st.Quota, Held: st.Held, InFlight: st.InFlight}
}

func (u *UI) endpointsPage(c echo.Context) error {
	a, err := u.app(c)
	if err != nil {
		return u.fail(c, err)
	}
	var d endpointsData
	d.Endpoints, d.Next, err = u.endpoints.List(c.Request().Context(), sess(c).Scope(), a.ID, c.QueryParam("cursor"), 100)
	if err != nil {
		return u.fail(c, err)
	}
	d.Quota = u.quotaBanner(c, a.ID)
	return u.render(c, http.StatusOK, "endpoints", view{Title: "Endpoints", Nav: "apps", App: a, AppNav: "endpoints", Data: d})
}

// endpointData is the endpoint form page (new or edit).
type endpointData struct {
	Endpoint *hook.Endpoint   // nil for a new one
	Health   []message.Health // last hour and day, when the message service tells
	// RateLimited is the rate-limit backlog deliver records for the
	// endpoint, while one is under way.
	RateLimited *hook.RateLimited
	Form        endpointForm
	Chains      []chainOption
	Builtin     []builtinEvent
	ABIEvts     []abiEvent
	ABIErr      string
	ArgNames    []string
	Ops         []string
	CanTest     bool   // a test event can be sent
	Secret      string // revealed secret (after rotate)
	TestMsg     string // message id of a test event just sent
}

type chainOption struct {
	ID   uint64
	Name string
}

func (u *UI) endpointData(ep *hook.Endpoint, f endpointForm) endpointData {
	d := endpointData{Endpoint: ep, Form: f, Builtin: builtinEvents(), Ops: condOps, CanTest: u.testSender != nil}
	for _, c := range u.chains {
		d.Chains = append(d.Chains, chainOption{ID: c.ID, Name: c.Name})
	}
	if strings.TrimSpace(f.ABI) != "" {
		evs, err := abiEvents(f.ABI)
		if err != nil {
			d.ABIErr = err.Error()
		}
		d.ABIEvts = evs
	}
	d.ArgNames = f.argNames()
	// Always offer a blank condition row to fill in.
	d.Form.Conds = append(append([]condRow{}, f.Conds...), condRow{})
	return d
}

func (u *UI) newEndpointPage(c echo.Context) error {
	a, err := u.app(c)
	if err != nil {
		return u.fail(c, err)
	}
	return u.render(c, http.StatusOK, "endpoint", view{Title: "New endpoint", Nav: "apps", App: a, AppNav: "endpoints",
		Data: u.endpointData(nil, newEndpointForm(u.chains))})
}

// invalidEndpoint re-shows the form with the service's (or the form's)
// field errors and everything the user typed.
func (u *UI) invalidEndpoint(c echo.Context, ep *hook.Endpoint, f endpointForm, fields map[string]string, msg string) error {
	a, err := u.app(c)
	if err != nil {
		return u.fail(c, err)
	}
	title := "New endpoint"
	if ep != nil {
		title = "Endpoint"
	}
	return u.render(c, http.StatusUnprocessableEntity, "endpoint", view{Title: title, Nav: "apps", App: a, AppNav: "endpoints",
		Fields: fields, Error: msg, Data: u.endpointData(ep, f)})
}

func (u *UI) createEndpoint(c echo.Context) error {
	form, err := c.FormParams()
	if err != nil {
		return u.fail(c, err)
	}
	f := parseEndpointForm(form)
	in := f.toEndpoint()
	if len(f.Fields) > 0 {
		return u.invalidEndpoint(c, nil, f, f.Fields, "The endpoint was not created: fix the fields marked below.")
	}
	ctx, scope := c.Request().Context(), sess(c).Scope()
	ep, _, err := u.endpoints.Create(ctx, scope, c.Param("app"), inputOf(in))
	if err == nil && !in.Enabled {
		ep, err = u.endpoints.Disable(ctx, scope, ep.AppID, ep.ID, disabledInUI)
	}
	if fe := fieldErrors(err); fe != nil {
		return u.invalidEndpoint(c, nil, f, fe, "The endpoint was not created: fix the fields marked below.")
	}
	if err != nil {
		return u.fail(c, err)
	}
	u.audit(c, ep.AppID, "endpoint.create", ep.ID, map[string]any{"url": ep.URL})
	if ep.Signature == sign.SchemeEd25519 {
		u.flash(c, "Endpoint created. Receivers verify its v1a signatures with the public key under “Verification key”.")
	} else {
		u.flash(c, "Endpoint created. Its signing secret is under “Signing secret”.")
	}
	return redirect(c, "/apps/"+ep.AppID+"/endpoints/"+ep.ID)
}

func (u *UI) endpointPage(c echo.Context) error {
	a, err := u.app(c)
	if err != nil {
		return u.fail(c, err)
	}
	ep, err := u.endpoints.Get(c.Request().Context(), sess(c).Scope(), a.ID, c.Param("ep"))
	if err != nil {
		return u.fail(c, err)
	}
	d := u.endpointData(&ep, formFromEndpoint(ep, u.chains))
	if u.messages != nil {
		// Health is a view, not the page: an error leaves it out.
		d.Health, _ = u.messages.Health(c.Request().Context(), sess(c).Scope(), a.ID, ep.ID, time.Now())
	}
	// Like health, a view: Redis trouble leaves it out.
	d.RateLimited, _ = endpoint.RateLimitedNow(c.Request().Context(), u.redis, u.keys, a.ID, ep.ID)
	return u.render(c, http.StatusOK, "endpoint", view{Title: "Endpoint", Nav: "apps", App: a, AppNav: "endpoints", Data: d})
}

func (u *UI) updateEndpoint(c echo.Context) error {
	ctx, scope := c.Request().Context(), sess(c).Scope()
	old, err := u.endpoints.Get(ctx, scope, c.Param("app"), c.Param("ep"))
	if err != nil {
		return u.fail(c, err)
	}
	form, err := c.FormParams()
	if err != nil {
		return u.fail(c, err)
	}
	f := parseEndpointForm(form)
	f.Enabled = old.Enabled // enabling has its own buttons
	if !sess(c).IsAdmin() {
		f.OpsEvents = old.OpsEvents // not on a member's form (only an admin may change them)
	}
	in := f.toEndpoint()
	if len(f.Fields) > 0 {
		return u.invalidEndpoint(c, &old, f, f.Fields, "Not saved: fix the fields marked below.")
	}
	ep, err := u.endpoints.Update(ctx, scope, old.AppID, old.ID, patchOf(in))
	if fe := fieldErrors(err); fe != nil {
		return u.invalidEndpoint(c, &old, f, fe, "Not saved: fix the fields marked below.")
	}
	if err != nil {
		return u.fail(c, err)
	}
	u.audit(c, ep.AppID, "endpoint.update", ep.ID, map[string]any{"url": ep.URL})
	u.flash(c, "Endpoint saved.")
	return redirect(c, "/apps/"+ep.AppID+"/endpoints/"+ep.ID)
}

// disabledInUI is the disabled_reason of an endpoint disabled here.
const disabledInUI = "disabled in the web UI"

func (u *UI) setEnabled(c echo.Context, enabled bool) error {
	ctx, scope, app, id := c.Request().Context(), sess(c).Scope(), c.Param("app"), c.Param("ep")
	var ep hook.Endpoint
	var err error
	if enabled {
		ep, err = u.endpoints.Enable(ctx, scope, app, id)
	} else {
		ep, err = u.endpoints.Disable(ctx, scope, app, id, disabledInUI)
	}
	if err != nil {
		return u.fail(c, err)
	}
	action, msg := "endpoint.disable", "Endpoint disabled: nothing is sent to it until you enable it."
	if enabled {
		action, msg = "endpoint.enable", "Endpoint enabled."
	}
	u.audit(c, ep.AppID, action, ep.ID, nil)
	u.flash(c, msg)
	return redirect(c, "/apps/"+ep.AppID+"/endpoints/"+ep.ID)
}

func (u *UI) enableEndpoint(c echo.Context) error  { return u.setEnabled(c, true) }
func (u *UI) disableEndpoint(c echo.Context) error { return u.setEnabled(c, false) }

func (u *UI) deleteEndpoint(c echo.Context) error {
	if err := u.endpoints.Delete(c.Request().Context(), sess(c).Scope(), c.Param("app"), c.Param("ep")); err != nil {
		return u.fail(c, err)
	}
	u.audit(c, c.Param("app"), "endpoint.delete", c.Param("ep"), nil)
	u.flash(c, "Endpoint deleted.")
	return redirect(c, "/apps/"+c.Param("app")+"/endpoints")
}

type secretData struct {
	AppID, EndpointID, Secret string
	Rotated                   bool
}

// Public reports whether Secret is an ed25519 endpoint's whpk_ public key
// (v1a): receivers verify with it, nothing signs with it.
func (d secretData) Public() bool { return sign.SchemeOf(d.Secret) == sign.SchemeEd25519 }

// revealSecret answers the htmx "Reveal" button with the secret in place;
// it is a POST so it needs the CSRF token and never lands in history.
func (u *UI) revealSecret(c echo.Context) error {
	s, err := u.endpoints.Secret(c.Request().Context(), sess(c).Scope(), c.Param("app"), c.Param("ep"))
	if err != nil {
		return u.fail(c, err)
	}
	u.audit(c, c.Param("app"), "endpoint.secret.reveal", c.Param("ep"), nil)
	return u.renderPart(c, http.StatusOK, "endpoint", "secret", view{Data: secretData{AppID: c.Param("app"), EndpointID: c.Param("ep"), Secret: s}})
}

func (u *UI) rotateSecret(c echo.Context) error {
	s, err := u.endpoints.RotateSecret(c.Request().Context(), sess(c).Scope(), c.Param("app"), c.Param("ep"), u.overlap)
	if err != nil {
		return u.fail(c, err)
	}
	u.audit(c, c.Param("app"), "endpoint.secret.rotate", c.Param("ep"), nil)
	return u.renderPart(c, http.StatusOK, "endpoint", "secret", view{Data: secretData{AppID: c.Param("app"), EndpointID: c.Param("ep"), Secret: s, Rotated: true}})
}

type testData struct {
	AppID, MessageID, Error string
}

func (u *UI) sendTest(c echo.Context) error {
	if u.testSender == nil {
		return u.errorPage(c, http.StatusNotFound, "Sending test events is not available in this build.")
	}
	id, err := u.testSender(c.Request().Context(), sess(c).Scope(), c.Param("app"), c.Param("ep"))
	if errors.Is(err, hook.ErrNotFound) {
		return u.fail(c, err)
	}
	d := testData{AppID: c.Param("app"), MessageID: id}
	if err != nil {
		// Disabled endpoint, quota reached, bad state: the service says why.
		d.Error = err.Error()
	} else {
		u.audit(c, d.AppID, "endpoint.test", c.Param("ep"), map[string]any{"message_id": id})
	}
	return u.renderPart(c, http.StatusOK, "endpoint", "test-result", view{Data: d})
}

// abiEventsPart answers the "Read events from ABI" button with checkboxes
// of the pasted ABI's events.
func (u *UI) abiEventsPart(c echo.Context) error {
	if _, err := u.app(c); err != nil {
		return u.fail(c, err)
	}
	form, err := c.FormParams()
	if err != nil {
		return u.fail(c, err)
	}
	f := parseEndpointForm(form)
	d := u.endpointData(nil, f)
	if strings.TrimSpace(f.ABI) == "" {
		d.ABIErr = "Paste a contract ABI (a JSON array) first."
	}
	return u.renderPart(c, http.StatusOK, "endpoint", "abi-events", view{Data: d})
}
