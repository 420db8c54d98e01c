package hook

import (
	"fmt"
	"strconv"
	"strings"
)

// Cursor is a chain's committed position: the last block (number and hash)
// whose logs are in the events stream. Ingest keeps it in Redis as
// `<prefix>{<chain_id>}:cursor`, committed with the block's entries; a
// durable copy in Postgres (package chaincursor) lets ingest resume when
// Redis loses its state. Its text form is "<number>:<hash>".
type Cursor struct {
	Number uint64
	Hash   string
	Set    bool // false: no block committed yet
}

// String is the cursor's text form, "" when unset.
func (c Cursor) String() string {
	if !c.Set {
		return ""
	}
	return strconv.FormatUint(c.Number, 10) + ":" + c.Hash
}

// ParseCursor parses "<number>:<hash>".
func ParseCursor(s string) (Cursor, error) {
	num, hash, ok := strings.Cut(s, ":")
	n, err := strconv.ParseUint(num, 10, 64)
	if !ok || err != nil || hash == "" {
		return Cursor{}, fmt.Errorf("bad cursor %q", s)
	}
	return Cursor{Number: n, Hash: hash, Set: true}, nil
}
