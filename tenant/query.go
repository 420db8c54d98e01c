package tenant

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ethhook/ethhook/hook"
)

// ScopeCond is the SQL condition limiting col (an application id column)
// to the applications scope may see; arg adds a value and returns its
// placeholder. An admin sees every application, an API key its one
// application, a member the applications listed for them in
// application_members (both, when a scope names an application and a
// user), and an empty scope nothing.
func ScopeCond(scope hook.Scope, col string, arg func(any) string) string {
	switch {
	case scope.Admin:
		return "TRUE"
	case scope.AppID == "" && scope.UserID == "":
		return "FALSE"
	}
	var conds []string
	if scope.AppID != "" {
		conds = append(conds, col+" = "+arg(scope.AppID))
	}
	if scope.UserID != "" {
		conds = append(conds, col+" IN (SELECT app_id FROM application_members WHERE user_id = "+arg(scope.UserID)+")")
	}
	return strings.Join(conds, " AND ")
}

// oneRow is the answer of a read or change of one row: v, or
// hook.NotFound(what, id) when there was no row, or err as "<doing> <id>: err".
func oneRow[T any](v T, err error, doing, what, id string) (T, error) {
	var zero T
	if errors.Is(err, pgx.ErrNoRows) {
		return zero, hook.NotFound(what, id)
	}
	if err != nil {
		return zero, fmt.Errorf("%s %s: %w", doing, id, err)
	}
	return v, nil
}

// oneChanged is the answer of a change of one row: nil, or
// hook.NotFound(what, id) when no row matched, or err as "<doing> <id>: err".
func oneChanged(tag pgconn.CommandTag, err error, doing, what, id string) error {
	if err != nil {
		return fmt.Errorf("%s %s: %w", doing, id, err)
	}
	if tag.RowsAffected() == 0 {
		return hook.NotFound(what, id)
	}
	return nil
}

// query builds a WHERE clause with numbered placeholders.
type query struct {
	conds []string
	args  []any
}

// arg adds v and returns its placeholder ("$3").
func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

// where adds a condition.
func (q *query) where(cond string) { q.conds = append(q.conds, cond) }

// scope adds ScopeCond on col.
func (q *query) scope(scope hook.Scope, col string) { q.where(ScopeCond(scope, col, q.arg)) }

// sql is the conditions joined with AND ("TRUE" when there are none).
func (q *query) sql() string {
	if len(q.conds) == 0 {
		return "TRUE"
	}
	return strings.Join(q.conds, " AND ")
}

// listQuery is the prologue of every list: the page size checked (0 =
// DefaultLimit), the cursor decoded (the last id of the previous page, ""
// for the first), and a query to add conditions to.
type listQuery struct {
	query
	limit int
	after string
}

func newList(cursor string, limit int) (*listQuery, error) {
	limit, err := clampLimit(limit)
	if err != nil {
		return nil, err
	}
	after, err := decodeCursor(cursor)
	if err != nil {
		return nil, err
	}
	return &listQuery{limit: limit, after: after}, nil
}

// afterID pages by the id column col: only rows after the previous page's
// last id.
func (l *listQuery) afterID(col string) {
	if l.after != "" {
		l.where(col + " > " + l.arg(l.after))
	}
}

// contains keeps the rows whose col contains s, ignoring case ("" keeps all).
func (l *listQuery) contains(col, s string) {
	if s != "" {
		l.where("strpos(lower(" + col + "), lower(" + l.arg(s) + ")) > 0")
	}
}

// equals keeps the rows whose col is v ("" keeps all).
func (l *listQuery) equals(col, v string) {
	if v != "" {
		l.where(col + " = " + l.arg(v))
	}
}

// limitArg is the placeholder of LIMIT: one row more than the page, to
// know whether there is a next one.
func (l *listQuery) limitArg() string { return l.arg(l.limit + 1) }
