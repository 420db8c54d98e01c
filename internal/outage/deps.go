package outage

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
)

// Deps are a module's Trackers of Postgres and Redis, for operations that
// call both (process handling a read: insert in Postgres, jobs in Redis).
type Deps struct{ Postgres, Redis *Tracker }

// NewDeps returns a Tracker for each dependency.
func NewDeps(log *zap.Logger) Deps {
	return Deps{Postgres: New(log, "postgres"), Redis: New(log, "redis")}
}

// Fail records err against the dependency it came from: Postgres for
// pgx's errors, Redis for the others.
func (d Deps) Fail(op string, err error) {
	if FromPostgres(err) {
		d.Postgres.Fail(op, err)
		return
	}
	d.Redis.Fail(op, err)
}

// OK records a successful call of both.
func (d Deps) OK() {
	d.Postgres.OK()
	d.Redis.OK()
}

// Report is OK or Fail by err.
func (d Deps) Report(op string, err error) {
	if err != nil {
		d.Fail(op, err)
		return
	}
	d.OK()
}

// FromPostgres reports whether err is one of pgx's (an error the server
// sent, a failed connect, or a failed exchange on an open connection:
// pgconn's errors of that kind say whether they are safe to retry) or was
// marked by Postgres.
func FromPostgres(err error) bool {
	var pe *pgconn.PgError
	var ce *pgconn.ConnectError
	var retry interface{ SafeToRetry() bool }
	var marked postgresError
	return errors.As(err, &pe) || errors.As(err, &ce) || errors.As(err, &retry) || errors.As(err, &marked)
}

// Postgres marks err as Postgres's, for a caller that knows where it came
// from: pgx returns the read error of a connection cut mid-statement
// (unexpected EOF) as it is, with nothing saying whose it was, and Deps
// would blame Redis. Nil stays nil.
func Postgres(err error) error {
	if err == nil {
		return nil
	}
	return postgresError{err}
}

type postgresError struct{ error }

func (e postgresError) Unwrap() error { return e.error }
