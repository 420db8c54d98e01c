package admin

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
)

// chainView is a chain's ingest status, read (internal/chainstatus) from
// the keys the ingest module writes: `<prefix>{<id>}:cursor` ("<number>:<hash>" of the last
// committed block), `:lease` (the writer's holder id) and `:head` (the
// newest block number seen, when the ingestor publishes it). Who holds the
// lease (the ingester's host and pid) is shown to admins only; everyone
// sees whether the chain has an active writer. With the chain's quorum
// set, `:providers` (hook.ProviderHealth) says which providers agree;
// admins only, like the lease holder. Safe and finalized are the
// node's heads at those tags as ingest last published them (`:finality`,
// "<safe cursor>|<finalized cursor>"); null when the node reports none.
type chainView struct {
	ID             uint64  `json:"id"`
	Name           string  `json:"name"`
	Head           *uint64 `json:"head"`            // null until known
	CommittedBlock *uint64 `json:"committed_block"` // null before the first commit
	CommittedHash  string  `json:"committed_hash"`
	Lag            *uint64 `json:"lag"`                    // head - committed_block, when both are known
	Safe           *uint64 `json:"safe"`                   // the node's safe head; null when not reported
	Finalized      *uint64 `json:"finalized"`              // the node's finalized head; null when not reported
	ActiveWriter   bool    `json:"active_writer"`          // an ingester holds the chain's lease
	LeaseHolder    string  `json:"lease_holder,omitempty"` // its host and pid; admins only
	StreamLength   int64   `json:"stream_length"`
	// Providers is each provider's health with the chain's quorum set;
	// admins only.
	Providers []hook.ProviderHealth `json:"providers,omitempty"`
}

// eventView is one entry of a chain's events stream.
type eventView struct {
	StreamID string     `json:"stream_id"`
	Event    hook.Event `json:"event"`
}

func (m *Module) chainStatus(c echo.Context, ch config.Chain) (chainView, error) {
	v := chainView{ID: ch.ID, Name: ch.Name}
	st, err := m.status.Read(c.Request().Context(), ch.ID)
	if err != nil {
		return v, err
	}
	if st.Cursor.Set {
		v.CommittedBlock, v.CommittedHash = &st.Cursor.Number, st.Cursor.Hash
	}
	v.ActiveWriter = st.Lease != ""
	if scopeOf(c).Admin {
		v.LeaseHolder = st.Lease
		v.Providers = st.Providers
	}
	if st.HasHead {
		v.Head = &st.Head
	}
	v.StreamLength = st.StreamLength
	if st.Finality.Safe.Set {
		v.Safe = &st.Finality.Safe.Number
	}
	if st.Finality.Finalized.Set {
		v.Finalized = &st.Finality.Finalized.Number
	}
	if lag, ok := st.Lag(); ok {
		v.Lag = &lag
	}
	return v, nil
}

func (m *Module) handleListChains(c echo.Context) error {
	cursor, limit, err := page(c, 50)
	if err != nil {
		return err
	}
	var after uint64
	if cursor != "" {
		if after, err = strconv.ParseUint(cursor, 10, 64); err != nil {
			return fieldError("cursor", "is not a cursor returned by this API")
		}
	}
	name := strings.ToLower(c.QueryParam("name"))
	var out []chainView
	next := ""
	for _, ch := range sortedChains(m.chains) {
		if ch.ID <= after && cursor != "" {
			continue
		}
		if name != "" && !strings.Contains(strings.ToLower(ch.Name), name) {
			continue
		}
		if len(out) == limit {
			next = strconv.FormatUint(out[len(out)-1].ID, 10)
			break
		}
		v, err := m.chainStatus(c, ch)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	return c.JSON(http.StatusOK, listOf(out, next))
}

func sortedChains(in []config.Chain) []config.Chain {
	out := append([]config.Chain(nil), in...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].ID < out[j-1].ID; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

var streamIDRe = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

func validStreamID(s string) bool {
	if !streamIDRe.MatchString(s) {
		return false
	}
	ms, seq, _ := strings.Cut(s, "-")
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return err1 == nil && err2 == nil
}

var addressRe = regexp.MustCompile(`^0x[0-9a-fA-F]{40}$`)

// handleChainEvents pages a chain's events stream newest first. Filters
// apply within each page of stream entries, so a filtered page may hold
// fewer than limit events while next_cursor still continues the scan.
func (m *Module) handleChainEvents(c echo.Context) error {
	id := c.Param("chain_id")
	var ch config.Chain
	found := false
	for _, x := range m.chains {
		if strconv.FormatUint(x.ID, 10) == id || x.Name == id {
			ch, found = x, true
			break
		}
	}
	if !found {
		return errNotFound
	}
	cursor, limit, err := page(c, 50)
	if err != nil {
		return err
	}
	if cursor != "" && !validStreamID(cursor) {
		return fieldError("cursor", "is not a cursor returned by this API")
	}
	typ := c.QueryParam("type")
	if typ != "" && typ != hook.TypeLog && typ != hook.TypeLogRemoved {
		return fieldError("type", "must be log or log.removed")
	}
	addr := c.QueryParam("address")
	if addr != "" && !addressRe.MatchString(addr) {
		return fieldError("address", "must be a 0x-prefixed 20-byte hex address")
	}
	end := "+"
	if cursor != "" {
		end = "(" + cursor
	}
	entries, err := m.rdb.Do(c.Request().Context(), m.rdb.B().Xrevrange().Key(m.keys.Events(ch.ID)).End(end).Start("-").
		Count(int64(limit+1)).Build()).AsXRange()
	if err != nil && !rueidis.IsRedisNil(err) {
		return err
	}
	next := ""
	if len(entries) > limit {
		entries = entries[:limit]
		next = entries[limit-1].ID
	}
	out := make([]eventView, 0, len(entries))
	for _, e := range entries {
		ev, err := hook.ParseEntry(e.FieldValues)
		if err != nil {
			continue // a malformed entry is ingest's bug; do not fail the listing
		}
		if typ != "" && ev.Type != typ {
			continue
		}
		if addr != "" && !strings.EqualFold(ev.Log.Address, addr) {
			continue
		}
		if ev.Log.Topics == nil {
			ev.Log.Topics = []string{} // the document says array
		}
		out = append(out, eventView{StreamID: e.ID, Event: ev})
	}
	return c.JSON(http.StatusOK, listOf(out, next))
}
