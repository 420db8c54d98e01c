package msgstate

import (
	"context"
	"fmt"
)

// Forget deletes the states still waiting (pending, delivering, failed,
// quota_exceeded) of endpointIDs of appID, just deleted (they or their
// application), and queues the endpoints for retention.PurgeDeleted, which
// deletes the rest of their history later, a batch at a time (migration
// 00090). Call it in the transaction that deleted them, after the delete.
//
// The waiting states go at once: one would count towards the application's
// quota and keep its partition's messages in flight for retention, and its
// absence is how deliver's writer knows the result of an attempt in flight
// has no message left (it drops it). Deleting them waits for a writer
// holding them. A backlog is what deliver has not sent yet, so this is
// bounded by the endpoint's backlog, not by its history.
func Forget(ctx context.Context, q Querier, appID string, endpointIDs []string) error {
	if _, err := q.Exec(ctx, `DELETE FROM message_states
		WHERE endpoint_id = ANY($2) AND state IN ('pending', 'delivering', 'failed') AND app_id = $1`, appID, endpointIDs); err != nil {
		return fmt.Errorf("forget waiting states: %w", err)
	}
	if _, err := q.Exec(ctx, `DELETE FROM message_states
		WHERE app_id = $1 AND state = 'quota_exceeded' AND endpoint_id = ANY($2)`, appID, endpointIDs); err != nil {
		return fmt.Errorf("forget held states: %w", err)
	}
	if _, err := q.Exec(ctx, `INSERT INTO endpoint_purges (endpoint_id, app_id)
		SELECT unnest($2::text[]), $1 ON CONFLICT DO NOTHING`, appID, endpointIDs); err != nil {
		return fmt.Errorf("queue the purge of their history: %w", err)
	}
	return nil
}

// FromLive is the FROM clause of readers of stored messages (the API's
// listings, the storage count): every message (m) with its state row (s,
// migration 00087), within its application, whose endpoint (e) still
// exists. A deleted endpoint's history stays until retention.PurgeDeleted
// deletes it, and is gone for readers at once. The endpoint is looked up
// by key: messages' ids are in the "C" collation and endpoints.id in the
// database's.
const FromLive = ` FROM messages m JOIN message_states s ON s.id = m.id AND s.app_id = m.app_id
	JOIN endpoints e ON e.id = m.endpoint_id COLLATE "default"`
