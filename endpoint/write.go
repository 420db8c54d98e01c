package endpoint

// Changing endpoints: create (within the plan's cap), update, enable,
// disable and delete, each in one transaction that notifies Postgres, then
// published on Redis after commit.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/msgstate"
	"github.com/ethhook/ethhook/sign"
	"github.com/ethhook/ethhook/tenant"
)

// notify announces a change inside tx.
func notify(ctx context.Context, tx pgx.Tx, id string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, id); err != nil {
		return fmt.Errorf("notify endpoint change %s: %w", id, err)
	}
	return nil
}

// publish announces a committed change on Redis. It is best effort: process
// also hears the Postgres NOTIFY and reloads periodically.
func (s *Service) publish(ctx context.Context, id string) {
	if s.rdb == nil {
		return
	}
	_ = s.rdb.Do(ctx, s.rdb.B().Publish().Channel(s.keys.EndpointsChanged()).Message(id).Build()).Error()
}

func newID() string { return "ep_" + ulid.Make().String() }

// Create validates and stores a new endpoint, returning it and the key its
// receiver verifies with (the only time it is returned without asking for
// it): the whsec_ secret, or for ed25519 the whpk_ public key (the whsk_
// private key never leaves the service).
func (s *Service) Create(ctx context.Context, scope hook.Scope, appID string, in Input) (hook.Endpoint, string, error) {
	if err := tenant.Visible(ctx, s.pool, scope, appID); err != nil {
		return hook.Endpoint{}, "", err
	}
	e := hook.Endpoint{
		AppID: appID, URL: strings.TrimSpace(in.URL), Description: in.Description, Enabled: true, Filter: in.Filter,
		BatchMax: in.BatchMax, BatchWaitMS: in.BatchWaitMS, RateLimit: in.RateLimit,
		RetrySchedule: in.RetrySchedule, AllowRedirects: in.AllowRedirects, OpsEvents: in.OpsEvents, Headers: in.Headers,
		Ordering: strings.TrimSpace(in.Ordering), FIFOKey: strings.TrimSpace(in.FIFOKey),
		Signature: strings.TrimSpace(in.Signature),
	}
	if len(in.OpsEvents) > 0 && !scope.Admin {
		return hook.Endpoint{}, "", ErrAdminOnly
	}
	e.TwoPhase = in.TwoPhase
	if e.RetrySchedule == nil {
		e.RetrySchedule = []string{}
	}
	if in.Confirmations != nil {
		e.Confirmations = *in.Confirmations
	} else {
		e.Confirmations = s.defaultConfirmations(in.Filter.Chains)
	}
	if in.Finality != nil {
		if err := applyFinality(&e, *in.Finality, in.Confirmations); err != nil {
			return hook.Endpoint{}, "", err
		}
	}
	if err := validate(&e); err != nil {
		return hook.Endpoint{}, "", err
	}
	if fields := map[string]string{}; in.FromBlock != nil {
		if s.checkFromBlock(ctx, in.FromBlock, e.Filter, fields); len(fields) > 0 {
			return hook.Endpoint{}, "", hook.FieldErrors(fields)
		}
	}
	secret, err := sign.NewSecretFor(e.Signature)
	if err != nil {
		return hook.Endpoint{}, "", fmt.Errorf("new signing secret: %w", err)
	}
	verifyKey, err := sign.VerifyKey(secret)
	if err != nil {
		return hook.Endpoint{}, "", fmt.Errorf("new signing secret: %w", err)
	}
	e.ID = newID()
	sealed, err := s.box.Seal(e.ID, []byte(secret))
	if err != nil {
		return hook.Endpoint{}, "", fmt.Errorf("seal signing secret: %w", err)
	}
	filterJSON, err := json.Marshal(e.Filter)
	if err != nil {
		return hook.Endpoint{}, "", fmt.Errorf("encode filter: %w", err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Lock the application row so two creates cannot both pass the plan's cap.
		var max, used int
		err := tx.QueryRow(ctx, `SELECT p.max_endpoints, (SELECT count(*) FROM endpoints e WHERE e.app_id = a.id)
			FROM applications a JOIN plans p ON p.id = a.plan_id WHERE a.id = $1 FOR UPDATE OF a`, appID).Scan(&max, &used)
		if errors.Is(err, pgx.ErrNoRows) {
			return hook.NotFound("application", appID)
		}
		if err != nil {
			return fmt.Errorf("check endpoint allowance of %s: %w", appID, err)
		}
		if max > 0 && used >= max && !scope.Admin {
			return fmt.Errorf("%w (%d of %d)", ErrLimitReached, used, max)
		}
		row := tx.QueryRow(ctx, `INSERT INTO endpoints (id, app_id, url, description, filter, confirmations, batch_max, batch_wait_ms,
				rate_limit, retry_schedule, allow_redirects, secret_enc, finality, two_phase, ordering, fifo_key, ops_events, headers, signature)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) RETURNING `+cols,
			e.ID, appID, e.URL, e.Description, filterJSON, e.Confirmations, e.BatchMax, e.BatchWaitMS,
			e.RateLimit, strings.Join(e.RetrySchedule, ","), e.AllowRedirects, sealed, e.Stage, e.TwoPhase, e.Ordering, e.FIFOKey,
			opsEvents(e.OpsEvents), headersJSON(e.Headers), e.Signature)
		if e, err = scan(row); err != nil {
			return fmt.Errorf("insert endpoint: %w", err)
		}
		if err := insertHistory(ctx, tx, &e, in.FromBlock); err != nil {
			return err
		}
		return notify(ctx, tx, e.ID)
	})
	if err != nil {
		return hook.Endpoint{}, "", err
	}
	s.publish(ctx, e.ID)
	return e, verifyKey, nil
}

// change runs fn on the endpoint's row inside a transaction (row locked),
// then saves what fn returns and announces the change.
func (s *Service) change(ctx context.Context, scope hook.Scope, appID, id string, fn func(e *hook.Endpoint) error) (hook.Endpoint, error) {
	if err := tenant.Visible(ctx, s.pool, scope, appID); err != nil {
		return hook.Endpoint{}, err
	}
	var out hook.Endpoint
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		e, err := scan(tx.QueryRow(ctx, `SELECT `+cols+` FROM endpoints WHERE id = $1 AND app_id = $2 FOR UPDATE`, id, appID))
		if errors.Is(err, pgx.ErrNoRows) {
			return hook.NotFound("endpoint", id)
		}
		if err != nil {
			return fmt.Errorf("read endpoint %s: %w", id, err)
		}
		wasOps, scheme := len(e.OpsEvents) > 0, e.Signature
		if err := fn(&e); err != nil {
			return err
		}
		if (wasOps || len(e.OpsEvents) > 0) && !scope.Admin {
			return ErrAdminOnly
		}
		if err := validate(&e); err != nil {
			return err
		}
		if e.Signature != scheme {
			// A new secret of the new scheme; the current one keeps
			// signing for the overlap, so receivers switch at their pace.
			if _, err := s.rotate(ctx, tx, id, e.Signature, DefaultOverlap); err != nil {
				return err
			}
		}
		filterJSON, err := json.Marshal(e.Filter)
		if err != nil {
			return fmt.Errorf("encode filter: %w", err)
		}
		out, err = scan(tx.QueryRow(ctx, `UPDATE endpoints SET url = $2, description = $3, enabled = $4, disabled_reason = $5,
				filter = $6, confirmations = $7, batch_max = $8, batch_wait_ms = $9, rate_limit = $10, retry_schedule = $11,
				allow_redirects = $12, failing_since = CASE WHEN $4 AND NOT enabled THEN NULL ELSE failing_since END,
				finality = $13, two_phase = $14, ordering = $15, fifo_key = $16, ops_events = $17, headers = $18, signature = $19, updated_at = now()
			WHERE id = $1 RETURNING `+cols,
			e.ID, e.URL, e.Description, e.Enabled, e.DisabledReason, filterJSON, e.Confirmations, e.BatchMax, e.BatchWaitMS,
			e.RateLimit, strings.Join(e.RetrySchedule, ","), e.AllowRedirects, e.Stage, e.TwoPhase, e.Ordering, e.FIFOKey,
			opsEvents(e.OpsEvents), headersJSON(e.Headers), e.Signature))
		if err != nil {
			return fmt.Errorf("update endpoint %s: %w", id, err)
		}
		return notify(ctx, tx, id)
	})
	if err != nil {
		return hook.Endpoint{}, err
	}
	s.publish(ctx, id)
	return out, nil
}

// Update applies p to the endpoint.
func (s *Service) Update(ctx context.Context, scope hook.Scope, appID, id string, p Patch) (hook.Endpoint, error) {
	return s.change(ctx, scope, appID, id, func(e *hook.Endpoint) error {
		setTrimmed(&e.URL, p.URL)
		setIf(&e.Description, p.Description)
		setIf(&e.Filter, p.Filter)
		if p.Confirmations != nil {
			e.Confirmations, e.Stage = *p.Confirmations, "" // confirmations:N
		}
		if p.Finality != nil {
			if err := applyFinality(e, *p.Finality, p.Confirmations); err != nil {
				return err
			}
		}
		setIf(&e.TwoPhase, p.TwoPhase)
		setIf(&e.BatchMax, p.BatchMax)
		setIf(&e.BatchWaitMS, p.BatchWaitMS)
		setIf(&e.RateLimit, p.RateLimit)
		setIf(&e.RetrySchedule, p.RetrySchedule)
		setIf(&e.AllowRedirects, p.AllowRedirects)
		if p.Ordering != nil {
			e.Ordering = strings.TrimSpace(*p.Ordering)
			if e.Ordering != hook.OrderingFIFO && p.FIFOKey == nil {
				e.FIFOKey = "" // back to parallel: the key means nothing any more
			}
		}
		setTrimmed(&e.FIFOKey, p.FIFOKey)
		setIf(&e.OpsEvents, p.OpsEvents)
		setIf(&e.Headers, p.Headers)
		setTrimmed(&e.Signature, p.Signature)
		return nil
	})
}

// setIf sets *dst to a patch field that was given (v not nil).
func setIf[T any](dst, v *T) {
	if v != nil {
		*dst = *v
	}
}

// setTrimmed is setIf for a string, without its surrounding space.
func setTrimmed(dst, v *string) {
	if v != nil {
		*dst = strings.TrimSpace(*v)
	}
}

// Enable turns delivery back on (and clears the failure run).
func (s *Service) Enable(ctx context.Context, scope hook.Scope, appID, id string) (hook.Endpoint, error) {
	return s.change(ctx, scope, appID, id, func(e *hook.Endpoint) error {
		e.Enabled, e.DisabledReason = true, ""
		return nil
	})
}

// Disable stops matching and delivery for the endpoint; reason is shown to the user.
func (s *Service) Disable(ctx context.Context, scope hook.Scope, appID, id, reason string) (hook.Endpoint, error) {
	if reason == "" {
		reason = "disabled by user"
	}
	return s.change(ctx, scope, appID, id, func(e *hook.Endpoint) error {
		e.Enabled, e.DisabledReason = false, reason
		return nil
	})
}

// Delete removes the endpoint and its waiting states, and queues the rest
// of its history (messages, states, attempts) for the retention role's
// purge (msgstate.Forget).
func (s *Service) Delete(ctx context.Context, scope hook.Scope, appID, id string) error {
	if err := tenant.Visible(ctx, s.pool, scope, appID); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM endpoints WHERE id = $1 AND app_id = $2`, id, appID)
		if err != nil {
			return fmt.Errorf("delete endpoint %s: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return hook.NotFound("endpoint", id)
		}
		if err := msgstate.Forget(ctx, tx, appID, []string{id}); err != nil {
			return fmt.Errorf("delete endpoint %s: %w", id, err)
		}
		return notify(ctx, tx, id)
	})
	if err != nil {
		return err
	}
	s.publish(ctx, id)
	return nil
}
