//go:build faults

package faults

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ethhook/ethhook/config"
)

// tally is the accounting of one scenario (summed over its endpoints)
// against the ground truth: the devnet's canonical chain at the end.
type tally struct {
	expected  int // canonical matching events every endpoint must have had
	delivered int // of those, acknowledged (2xx) at least once
	missing   int
	dup       int // acknowledgements beyond the first of a webhook-id
	orphans   int // orphaned (non-canonical) events sent to an endpoint with confirmations
	badSig    int // requests whose signature did not verify
	pending   int // messages not in a final state (enabled endpoints)

	unretracted int // orphaned events sent to a 0-confirmation endpoint without their log.removed
	badRemoval  int // log.removed for a canonical event, or sent to an endpoint with confirmations
	unexpected  int // canonical events that do not match the endpoint's filter
	afterDelete int // webhooks that arrived for a deleted endpoint well after the delete
	notDisabled int // endpoints answering 410 that are still enabled

	maxLate        time.Duration
	lateOf         string   // the webhook that was maxLate late: endpoint, id, block, first ack
	lateEP, lateID string   // its endpoint id and event id
	examples       []string // a few missing ids and violations, for the failure message
}

func (t tally) violations() int {
	return t.missing + t.orphans + t.badSig + t.pending + t.unretracted + t.badRemoval + t.unexpected + t.afterDelete + t.notDisabled
}

func (t tally) String() string {
	s := fmt.Sprintf("expected=%d delivered=%d missing=%d dup=%d orphans=%d badsig=%d pending=%d max_lateness=%.1fs",
		t.expected, t.delivered, t.missing, t.dup, t.orphans, t.badSig, t.pending, t.maxLate.Seconds())
	for _, x := range []struct {
		n    int
		name string
	}{{t.unretracted, "unretracted"}, {t.badRemoval, "bad_removal"}, {t.unexpected, "unexpected"},
		{t.afterDelete, "after_delete"}, {t.notDisabled, "not_disabled"}} {
		if x.n > 0 {
			s += fmt.Sprintf(" %s=%d", x.name, x.n)
		}
	}
	return s
}

// truth is the chain at the end of the load, read once mining is paused.
type truth struct {
	head  uint64
	logs  []chainLog
	canon map[string]chainLog
}

func (c *cluster) readTruth() truth {
	h := c.devnet.pause()
	logs := c.devnet.canonicalLogs(chainID, c.firstBlock, h.Number)
	tr := truth{head: h.Number, logs: logs, canon: make(map[string]chainLog, len(logs))}
	for _, l := range logs {
		tr.canon[l.ID] = l
	}
	return tr
}

// account compares what every endpoint's receiver acknowledged with the
// ground truth. faultEnd is when the last fault ended: lateness is measured
// from max(block mined, fault end).
func (c *cluster) account(tr truth, faultEnd time.Time) tally {
	var t tally
	ctx := context.Background()
	note := func(format string, a ...any) {
		if len(t.examples) < 8 {
			t.examples = append(t.examples, fmt.Sprintf(format, a...))
		}
	}
	for _, e := range c.eps {
		got := c.recv.snapshot(e.name)
		t.badSig += got.badSig

		// What this endpoint must have had. An event counts once it is
		// deeper than the endpoint's confirmations at the end (one block of
		// slack for how "N deep" is counted).
		var inPipeline map[string]bool
		if e.toggled {
			// Events mined while it was disabled may or may not have
			// matched; those the pipeline took (a message row) must arrive,
			// and so must everything from some blocks after the re-enable.
			inPipeline = map[string]bool{}
			rows, err := c.pool.Query(ctx, `SELECT event_id FROM messages WHERE endpoint_id = $1 AND type = 'log'`, e.id)
			if err == nil {
				for rows.Next() {
					var id string
					if rows.Scan(&id) == nil {
						inPipeline[id] = true
					}
				}
				rows.Close()
			}
		}
		must := map[string]chainLog{}
		if e.deletedAt.IsZero() && !e.goes410 {
			for _, l := range tr.logs {
				if !e.matches(l) {
					continue
				}
				if e.confirmations > 0 && l.Block+uint64(e.confirmations)+1 > tr.head {
					continue
				}
				if e.toggled && l.Block <= e.enabledHead+20 && !inPipeline[l.ID] {
					continue
				}
				must[l.ID] = l
			}
		}
		t.expected += len(must)

		for id, a := range got.ids {
			if a.acks == 0 {
				continue
			}
			t.dup += a.acks - 1
			if !e.deletedAt.IsZero() && a.firstAck.After(e.deletedAt.Add(10*time.Second)) {
				t.afterDelete++
				note("%s: %s arrived %s after the delete", e.name, id, a.firstAck.Sub(e.deletedAt).Round(time.Millisecond))
			}
			base, removal := strings.CutSuffix(id, ":removed")
			l, canonical := tr.canon[base]
			switch {
			case removal && (e.confirmations > 0 || canonical):
				t.badRemoval++
				note("%s: log.removed %s (canonical=%v, confirmations=%d)", e.name, id, canonical, e.confirmations)
			case removal:
			case !canonical && e.confirmations > 0:
				t.orphans++
				note("%s: orphaned %s delivered with %d confirmations", e.name, id, e.confirmations)
			case !canonical:
				if r := got.ids[id+":removed"]; r == nil || r.acks == 0 {
					t.unretracted++
					note("%s: orphaned %s delivered without its log.removed", e.name, id)
				}
			case !e.matches(l):
				t.unexpected++
				note("%s: %s does not match the filter", e.name, id)
			}
			if _, ok := must[id]; ok {
				t.delivered++
				from := c.devnet.minedAt(l.Block)
				if faultEnd.After(from) {
					from = faultEnd
				}
				if !from.IsZero() {
					if d := a.firstAck.Sub(from); d > t.maxLate {
						t.maxLate = d
						t.lateEP, t.lateID = e.id, id
						t.lateOf = fmt.Sprintf("%s %s (block %d, first acknowledged %s)", e.name, id, l.Block,
							a.firstAck.UTC().Format("15:04:05.000"))
					}
				}
			}
		}
		for id, l := range must {
			if a := got.ids[id]; a == nil || a.acks == 0 {
				t.missing++
				note("%s: missing %s (block %d of %d)", e.name, id, l.Block, tr.head)
			}
		}

		if e.goes410 && c.enabled(e) {
			t.notDisabled++
			note("%s: answered 410 since %s but is still enabled", e.name, got.gone.Format(time.TimeOnly))
		}
		if e.deletedAt.IsZero() && !e.goes410 {
			var n int
			c.pool.QueryRow(ctx, `SELECT count(*) FROM message_states WHERE endpoint_id = $1
				AND state IN ('pending', 'delivering', 'failed', 'quota_exceeded')`, e.id).Scan(&n)
			t.pending += n
			if n > 0 {
				note("%s: %d messages not final; oldest: %s", e.name, n, c.oldestWaiting(ctx, e.id))
			}
		}
	}
	return t
}

// drain waits until the pipeline has nothing left: every expected webhook
// acknowledged, nothing pending in Postgres and the receiver quiet for two
// seconds; or until the deadline. It returns the last accounting.
func (c *cluster) drain(tr truth, faultEnd time.Time, deadline time.Duration) tally {
	end := time.Now().Add(deadline)
	for {
		t := c.account(tr, faultEnd)
		quiet := time.Since(c.recv.lastRequest()) > 2*time.Second
		if (t.missing == 0 && t.pending == 0 && quiet) || time.Now().After(end) {
			return t
		}
		time.Sleep(time.Second)
	}
}

// oldestWaiting describes an endpoint's oldest message not in a final
// state, for a failure message: what it waits for.
func (c *cluster) oldestWaiting(ctx context.Context, endpointID string) string {
	var id, state, owner string
	var attempts int
	var created, updated time.Time
	var next, lease *time.Time
	err := c.pool.QueryRow(ctx, `SELECT id, state, attempts, coalesce(lease_owner, ''), lease_until, next_attempt_at, created_at, updated_at
		FROM message_states WHERE endpoint_id = $1 AND state IN ('pending', 'delivering', 'failed', 'quota_exceeded')
		ORDER BY created_at LIMIT 1`, endpointID).Scan(&id, &state, &attempts, &owner, &lease, &next, &created, &updated)
	if err != nil {
		return err.Error()
	}
	at := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format("15:04:05.000")
	}
	return fmt.Sprintf("%s %s attempts=%d owner=%q lease_until=%s next_attempt_at=%s created=%s updated=%s",
		id, state, attempts, owner, at(lease), at(next), at(&created), at(&updated))
}

// overdue is the retry that started longest after it was due.
type overdue struct {
	by    time.Duration
	about string // endpoint, event id, attempt, when due and when started
}

// retryOverdue finds, over every attempt that followed a failed one, how
// long after its latest due time it started: the previous attempt's end
// plus the suite's retry delay for it with deliver's +20% jitter. Retries
// run on the schedule itself, not on a timer of the lane, so anything
// beyond a few tenths of a second is a retry left to the sweeper or
// scheduled late; a breaker's cooldown or a disabled window would show here
// too (receivers-flaky opens no breaker, and its disabled endpoint never
// fails). max_lateness mixes that with what the schedule rightly costs a
// message failing a few times in a row (each failed attempt of the hanging
// receiver adds the 2 s timeout and its retry delay).
func (c *cluster) retryOverdue() overdue {
	ctx := context.Background()
	raw := baseSettings["ETHHOOK_DELIVERY_RETRY_SCHEDULE"]
	if v, ok := c.opt.env["ETHHOOK_DELIVERY_RETRY_SCHEDULE"]; ok {
		raw = v
	}
	sched, err := config.ParseSchedule(strings.Split(raw, ","))
	if err != nil {
		return overdue{about: err.Error()}
	}
	names := map[string]string{}
	for _, e := range c.eps {
		names[e.id] = e.name
	}
	// An attempt's row is written when it ends (created_at); it started
	// latency_ms before.
	rows, err := c.pool.Query(ctx, `SELECT h.endpoint_id, m.event_id, h.attempt, h.prev_attempt, h.prev_end, h.started FROM (
		SELECT message_id, endpoint_id, attempt, created_at - latency_ms * interval '1 millisecond' AS started,
		       lag(attempt) OVER w AS prev_attempt, lag(created_at) OVER w AS prev_end
		FROM delivery_history WINDOW w AS (PARTITION BY message_id ORDER BY attempt, created_at)) h
		JOIN messages m ON m.id = h.message_id WHERE h.prev_end IS NOT NULL`)
	if err != nil {
		return overdue{about: err.Error()}
	}
	defer rows.Close()
	var worst overdue
	for rows.Next() {
		var ep, event string
		var attempt, prev int
		var prevEnd, started time.Time
		if err := rows.Scan(&ep, &event, &attempt, &prev, &prevEnd, &started); err != nil {
			return overdue{about: err.Error()}
		}
		if prev < 1 || prev >= len(sched) {
			continue
		}
		due := prevEnd.Add(sched[prev] * 6 / 5)
		if d := started.Sub(due); d > worst.by {
			worst = overdue{by: d, about: fmt.Sprintf("%s %s attempt %d started %s, due by %s (attempt %d ended %s)",
				names[ep], event, attempt, started.UTC().Format("15:04:05.000"), due.UTC().Format("15:04:05.000"),
				prev, prevEnd.UTC().Format("15:04:05.000"))}
		}
	}
	if err := rows.Err(); err != nil {
		return overdue{about: err.Error()}
	}
	return worst
}
