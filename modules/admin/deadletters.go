package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/ethhook/ethhook/deadletter"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
)

type (
	deadLetterView = deadletter.Letter
	historyView    = hook.History
)

func (m *Module) historyRoutes() []route {
	var rs []route
	if m.endpoints != nil {
		rs = append(rs, route{method: http.MethodGet, path: "/applications/:app_id/endpoints/:endpoint_id/history", id: "getEndpointHistory",
			summary: "Progress of the endpoint's history (created with from_block): state, blocks done, events", tag: "endpoints",
			auth: authUser, resp: historyView{}, status: 200, h: m.handleGetHistory})
	}
	if m.rdb != nil {
		rs = append(rs,
			route{method: http.MethodGet, path: "/dead-letters", id: "listDeadLetters",
				summary: "Stream entries process failed on process.poison_tries times, newest first (admin)", tag: "dead-letters",
				auth: authAdmin, query: []qparam{{"chain_id", "integer", "only this chain"}, {"limit", "integer", "1-500 (default 50)"}},
				resp: List[deadLetterView]{}, status: 200, h: m.handleListDeadLetters},
			route{method: http.MethodPost, path: "/dead-letters/:dead_letter_id/replay", id: "replayDeadLetter",
				summary: "Put a dead-lettered entry back on its chain's events stream (after fixing the cause) (admin)", tag: "dead-letters",
				auth: authAdmin, resp: deadLetterView{}, status: 202, h: m.handleReplayDeadLetter})
	}
	return rs
}

func (m *Module) handleGetHistory(c echo.Context) error {
	ep, err := m.endpoints.Get(c.Request().Context(), scopeOf(c), c.Param("app_id"), c.Param("endpoint_id"))
	if err != nil {
		return err
	}
	if ep.History == nil {
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "endpoint " + ep.ID + " has no history (it was not created with from_block)"}
	}
	return c.JSON(http.StatusOK, ep.History)
}

// maxDeadLetterList bounds one listing.
const maxDeadLetterList = 500

func (m *Module) handleListDeadLetters(c echo.Context) error {
	limit := endpoint.DefaultLimit
	if s := c.QueryParam("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxDeadLetterList {
			return fieldError("limit", fmt.Sprintf("must be 1..%d, got %q", maxDeadLetterList, s))
		}
		limit = n
	}
	var chains []uint64
	if s := c.QueryParam("chain_id"); s != "" {
		id, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return fieldError("chain_id", fmt.Sprintf("not a chain id: %q", s))
		}
		chains = []uint64{id}
	} else {
		for _, ch := range m.chains {
			chains = append(chains, ch.ID)
		}
		if len(chains) == 0 {
			chains = []uint64{31337} // serve with no chain configured runs the devnet
		}
	}
	ls, err := deadletter.List(c.Request().Context(), m.rdb, m.keys, chains, limit)
	if err != nil {
		return err
	}
	if ls == nil {
		ls = []deadletter.Letter{}
	}
	return c.JSON(http.StatusOK, listOf(ls, ""))
}

func (m *Module) handleReplayDeadLetter(c echo.Context) error {
	id := c.Param("dead_letter_id")
	l, err := deadletter.Replay(c.Request().Context(), m.rdb, m.keys, id)
	switch {
	case errors.Is(err, deadletter.ErrBadID):
		return fieldError("dead_letter_id", err.Error())
	case err != nil:
		return err // hook.ErrNotFound: 404, mapped with every other
	}
	m.audit(c, "dead_letter.replay", "", id, map[string]any{"entry": l.EntryID, "event": l.Fields["id"]})
	return c.JSON(http.StatusAccepted, l)
}
