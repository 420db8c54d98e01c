package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
)

const (
	// maxIdempotencyKey bounds the Idempotency-Key header (the column
	// checks it too).
	maxIdempotencyKey = 255
	// idempotencyTTL is how long a key's first answer is kept.
	idempotencyTTL = 24 * time.Hour
	// idempotencyStale is when a key whose first request never finished
	// (its process died) may be taken by a retry.
	idempotencyStale = 2 * time.Minute
	// idempotencyPurgeBatch bounds one purge pass.
	idempotencyPurgeBatch = 10000
)

// teeWriter copies what the handler writes so the answer can be kept.
type teeWriter struct {
	http.ResponseWriter
	buf bytes.Buffer
}

func (w *teeWriter) Write(b []byte) (int, error) {
	w.buf.Write(b)
	return w.ResponseWriter.Write(b)
}

// requestHash identifies a request for its Idempotency-Key.
func requestHash(method, path string, body []byte) []byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n", method, path)
	h.Write(body)
	return h.Sum(nil)
}

func validIdempotencyKey(k string) bool {
	if len(k) == 0 || len(k) > maxIdempotencyKey {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// idempotency answers a retried create with its first answer: the same
// Idempotency-Key and the same method, path and body within 24 h get the
// kept status and body (and Idempotent-Replayed: true); the same key with
// another request is 422; a key whose first request is still running is
// 409. Keys are per tenant: an API key's application, or the user. Answers
// of 5xx and 429 are not kept, so a retry runs again.
func (m *Module) idempotency(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		key := c.Request().Header.Get("Idempotency-Key")
		if key == "" {
			return next(c)
		}
		if !validIdempotencyKey(key) {
			return fieldError("Idempotency-Key", fmt.Sprintf("must be 1-%d printable ASCII characters", maxIdempotencyKey))
		}
		p := callerOf(c)
		scope := "user:" + p.Actor
		if p.ActorType == "api_key" {
			scope = "app:" + p.Scope.AppID
		}
		body, err := io.ReadAll(c.Request().Body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return echo.NewHTTPError(http.StatusRequestEntityTooLarge)
			}
			return badRequest("could not read the request body")
		}
		c.Request().Body = io.NopCloser(bytes.NewReader(body))
		sum := requestHash(c.Request().Method, c.Request().URL.Path, body)

		ctx := c.Request().Context()
		owned, err := m.claimIdempotencyKey(ctx, scope, key, sum)
		if err != nil {
			return err
		}
		if !owned {
			return m.replayIdempotent(c, scope, key, sum)
		}
		tee := &teeWriter{ResponseWriter: c.Response().Writer}
		c.Response().Writer = tee
		if err := next(c); err != nil {
			c.Error(err) // written now, through tee
		}
		status := c.Response().Status
		// Keep the answer with a context of its own: the client may be gone.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if status >= 500 || status == http.StatusTooManyRequests {
			_, err = m.pool.Exec(sctx, `DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2`, scope, key)
		} else {
			_, err = m.pool.Exec(sctx, `UPDATE idempotency_keys SET status = $3, content_type = $4, response = $5 WHERE scope = $1 AND key = $2`,
				scope, key, status, c.Response().Header().Get(echo.HeaderContentType), tee.buf.Bytes())
		}
		if err != nil {
			m.log.Error("keep idempotent answer", zap.String("request_id", requestID(c)), zap.Error(err))
		}
		return nil
	}
}

// claimIdempotencyKey records key for this request; false when it exists
// (a first request that died long ago is taken over).
func (m *Module) claimIdempotencyKey(ctx context.Context, scope, key string, sum []byte) (bool, error) {
	tag, err := m.pool.Exec(ctx, `INSERT INTO idempotency_keys AS k (scope, key, request_hash) VALUES ($1, $2, $3)
		ON CONFLICT (scope, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, status = NULL, response = NULL, created_at = now()
		WHERE k.created_at < now() - make_interval(secs => $4)
		   OR (k.status IS NULL AND k.created_at < now() - make_interval(secs => $5))`,
		scope, key, sum, idempotencyTTL.Seconds(), idempotencyStale.Seconds())
	if err != nil {
		return false, fmt.Errorf("claim idempotency key: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

func (m *Module) replayIdempotent(c echo.Context, scope, key string, sum []byte) error {
	var stored []byte
	var status *int
	var ctype string
	var resp []byte
	err := m.pool.QueryRow(c.Request().Context(), `SELECT request_hash, status, content_type, response FROM idempotency_keys WHERE scope = $1 AND key = $2`,
		scope, key).Scan(&stored, &status, &ctype, &resp)
	if errors.Is(err, pgx.ErrNoRows) {
		// Purged between the two statements: the caller may simply retry.
		return &apiError{Status: http.StatusConflict, Code: "conflict", Message: fmt.Sprintf("Idempotency-Key %q changed while this request ran; retry", key)}
	}
	if err != nil {
		return fmt.Errorf("read idempotency key: %w", err)
	}
	if !bytes.Equal(stored, sum) {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "idempotency_key_reused",
			Message: fmt.Sprintf("Idempotency-Key %q was used within 24 h for another request (method, path or body); use a new key", key)}
	}
	if status == nil {
		return &apiError{Status: http.StatusConflict, Code: "conflict",
			Message: fmt.Sprintf("a request with Idempotency-Key %q is still running; retry in a moment", key), RetryAfter: 1}
	}
	c.Response().Header().Set("Idempotent-Replayed", "true")
	if ctype == "" || len(resp) == 0 {
		return c.NoContent(*status)
	}
	return c.Blob(*status, ctype, resp)
}

// purgeIdempotencyKeys drops keys past their 24 hours (bounded per pass).
func (m *Module) purgeIdempotencyKeys(ctx context.Context) {
	_, err := m.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE ctid IN (
		SELECT ctid FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1) LIMIT $2)`,
		idempotencyTTL.Seconds(), idempotencyPurgeBatch)
	if err != nil && ctx.Err() == nil {
		m.log.Error("purge idempotency keys", zap.Error(err))
	}
}
