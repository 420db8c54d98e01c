package endpoint

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ethhook/ethhook/seal"
)

// Resealed counts what Reseal did.
type Resealed struct {
	Endpoints int // endpoints looked at
	Secrets   int // sealed secrets looked at (current and rotation-old ones)
	Changed   int // secrets sealed again (the rest were current under the new key)
}

// Reseal seals every endpoint's signing secret, and the old secret a
// rotation keeps signing during its overlap, again under to, bound to the
// endpoint id (seal format v2). from opens them: give it the key being
// rotated away from as a previous key (seal.New(newKey, oldKey)). Secrets
// already current under to are left as they are, so a second run changes
// nothing. It runs in one transaction with the rows locked: either every
// secret is sealed again or, when one does not open, none is and the error
// names that endpoint.
func Reseal(ctx context.Context, pool *pgxpool.Pool, from, to *seal.Box) (Resealed, error) {
	var res Resealed
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, secret_enc, old_secret_enc FROM endpoints ORDER BY id FOR UPDATE`)
		if err != nil {
			return fmt.Errorf("read endpoint secrets: %w", err)
		}
		type row struct {
			ID       string
			Cur, Old []byte
		}
		all, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
		if err != nil {
			return fmt.Errorf("read endpoint secrets: %w", err)
		}
		reseal := func(id, what string, sealed []byte) ([]byte, bool, error) {
			res.Secrets++
			if _, current, err := to.OpenCurrent(id, sealed); err == nil && current {
				return sealed, false, nil
			}
			plain, err := from.Open(id, sealed)
			if err != nil {
				return nil, false, fmt.Errorf("endpoint %s %s: %w", id, what, err)
			}
			out, err := to.Seal(id, plain)
			if err != nil {
				return nil, false, fmt.Errorf("endpoint %s %s: %w", id, what, err)
			}
			res.Changed++
			return out, true, nil
		}
		batch := &pgx.Batch{}
		for _, r := range all {
			res.Endpoints++
			cur, c1, err := reseal(r.ID, "secret", r.Cur)
			if err != nil {
				return err
			}
			old, c2 := r.Old, false
			if r.Old != nil {
				if old, c2, err = reseal(r.ID, "old secret", r.Old); err != nil {
					return err
				}
			}
			if c1 || c2 {
				batch.Queue(`UPDATE endpoints SET secret_enc = $2, old_secret_enc = $3 WHERE id = $1`, r.ID, cur, old)
			}
		}
		// Rotated-out secrets that still sign (endpoint_old_secrets).
		orows, err := tx.Query(ctx, `SELECT id, endpoint_id, secret_enc FROM endpoint_old_secrets ORDER BY id FOR UPDATE`)
		if err != nil {
			return fmt.Errorf("read old endpoint secrets: %w", err)
		}
		type oldRow struct {
			ID       int64
			Endpoint string
			Sealed   []byte
		}
		olds, err := pgx.CollectRows(orows, pgx.RowToStructByPos[oldRow])
		if err != nil {
			return fmt.Errorf("read old endpoint secrets: %w", err)
		}
		for _, r := range olds {
			out, changed, err := reseal(r.Endpoint, "old secret", r.Sealed)
			if err != nil {
				return err
			}
			if changed {
				batch.Queue(`UPDATE endpoint_old_secrets SET secret_enc = $2 WHERE id = $1`, r.ID, out)
			}
		}
		if batch.Len() == 0 {
			return nil
		}
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return fmt.Errorf("write re-sealed secrets: %w", err)
		}
		return nil
	})
	if err != nil {
		return Resealed{}, err
	}
	return res, nil
}
