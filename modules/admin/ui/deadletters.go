package ui

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ethhook/ethhook/deadletter"
	"github.com/ethhook/ethhook/hook"
)

// deadLettersData is the dead-letters page (admins only): stream entries
// process failed on process.poison_tries times, with their errors.
type deadLettersData struct {
	Letters []deadletter.Letter
}

// maxLettersShown bounds the page.
const maxLettersShown = 200

func (u *UI) deadLetterRoutes(a *routes) {
	a.GET("/dead-letters", u.deadLettersPage)
	a.POST("/dead-letters/:id/replay", u.replayDeadLetter)
}

func (u *UI) deadLettersPage(c echo.Context) error {
	if !sess(c).IsAdmin() {
		return u.errorPage(c, http.StatusForbidden, "Dead letters are for admins.")
	}
	chains := make([]uint64, 0, len(u.chains))
	for _, ch := range u.chains {
		chains = append(chains, ch.ID)
	}
	if len(chains) == 0 {
		chains = []uint64{31337} // no chain configured: the embedded devnet
	}
	ls, err := deadletter.List(c.Request().Context(), u.redis, u.keys, chains, maxLettersShown)
	if err != nil {
		return u.fail(c, err)
	}
	var v view
	v.Title, v.Nav, v.Data = "Dead letters", "dead-letters", deadLettersData{Letters: ls}
	return u.render(c, http.StatusOK, "deadletters", v)
}

func (u *UI) replayDeadLetter(c echo.Context) error {
	if !sess(c).IsAdmin() {
		return u.errorPage(c, http.StatusForbidden, "Dead letters are for admins.")
	}
	id := c.Param("id")
	_, err := deadletter.Replay(c.Request().Context(), u.redis, u.keys, id)
	switch {
	case errors.Is(err, deadletter.ErrBadID), errors.Is(err, hook.ErrNotFound):
		return u.errorPage(c, http.StatusNotFound, "No such dead letter (replayed already?): "+id)
	case err != nil:
		return u.fail(c, err)
	}
	u.audit(c, "", "dead_letter.replay", id, nil)
	u.flash(c, "Entry put back on its chain's events stream; process handles it again.")
	return redirect(c, "/dead-letters")
}
