package deliver

import (
	"context"
	"fmt"

	"github.com/ethhook/ethhook/msgstate"
)

// Ordered delivery (endpoint ordering "fifo"). process writes each message
// of a FIFO endpoint with its ordering group (messages.fifo_key: the chain,
// or the chain and a field of the log) and its place in chain order
// (block_number, log_index, then type, so a log.removed follows the log it
// retracts). Within a group the lane sends one message at a time, in that
// order; groups do not wait for each other.
//
// Postgres is the arbiter (msgstate.PullOrdered), so several processes
// never interleave one group: a group is pulled only when its first waiting
// message (pending, failed or delivering) may be claimed, and then only the
// run of claimable messages from there; a group whose first message is in
// flight anywhere, or failed and waiting for its retry, is skipped. Pulls of
// one endpoint take a transaction-level advisory lock, so two pulls cannot
// split a group between them. Intake never claims a FIFO endpoint's ordered messages (claim.go):
// their jobs only hint the lane.
//
// An endpoint created with history (from_block) is not pulled until its
// history is done (endpoint_history state pending or running): its live
// messages wait, so the older history messages, made later, still go first.
// The job hints of the last history messages, or the sweeper, start it.
//
// A failed attempt (a retry scheduled) hands the group's other queued
// messages back to pending: they wait behind it, in Postgres, until it
// succeeds or is dead. A dead message lets the group move on; its attempt
// row says so.

// fifoGroupsPerPull bounds how many ordering groups one pull looks at (one
// index probe each). With more groups waiting, pulls go round them: each
// starts after the last group the previous one looked at.
const fifoGroupsPerPull = 256

// fifoMovedOn is added to the attempt log of a FIFO message that is dead.
const fifoMovedOn = "ordered delivery moves on to the next message of this order"

// pullFIFO claims up to limit messages of a FIFO endpoint: for each of up
// to fifoGroupsPerPull groups after cursor, the run of claimable messages at
// its head. It returns the jobs in chain order and the cursor for the next
// pull ("" to start again from the first group).
func (m *Module) pullFIFO(ctx context.Context, endpointID, cursor string, limit int) ([]*job, string, error) {
	claimed, next, err := msgstate.PullOrdered(ctx, m.pool, endpointID, cursor, fifoGroupsPerPull, limit, m.lease())
	if err != nil {
		return nil, cursor, fmt.Errorf("pull ordered messages of endpoint %s: %w", endpointID, err)
	}
	// RETURNING follows the plan: toJobs puts each group back in chain order.
	return toJobs(claimed, true), next, nil
}

// before orders FIFO jobs by chain order (groups interleave by block).
func (j *job) before(o *job) bool {
	switch {
	case j.block != o.block:
		return j.block < o.block
	case j.logIndex != o.logIndex:
		return j.logIndex < o.logIndex
	case j.typ != o.typ:
		return j.typ < o.typ // "log" < "log.removed": a retraction follows its log
	}
	return j.id < o.id
}

// nextLocked is the index in the queue of the next message the lane may
// send, -1 for none: the first one, unless it is ordered and its group has
// a message in flight; then the first one whose group has none. The scan is
// bounded by the lane's depth, and only FIFO lanes scan.
func (l *lane) nextLocked() int {
	for i, j := range l.queue {
		if !j.fifo || !l.sendingGroups[j.group] {
			return i
		}
	}
	return -1
}

// takeLocked removes the queue's message at i and marks its group busy.
func (l *lane) takeLocked(i int) *job {
	j := l.queue[i]
	if i == 0 {
		l.queue[0] = nil
		l.queue = l.queue[1:]
	} else {
		l.queue = append(l.queue[:i], l.queue[i+1:]...)
	}
	if j.fifo {
		if l.sendingGroups == nil {
			l.sendingGroups = map[string]bool{}
		}
		l.sendingGroups[j.group] = true
	}
	return j
}

// groupDone frees j's group after its attempt. When the attempt failed and
// will be retried, the group's queued messages wait behind it: they are
// taken out of the queue and returned (the caller hands them back).
func (l *lane) groupDone(j *job, retrying bool) []*job {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.sendingGroups, j.group)
	if !retrying {
		return nil
	}
	var behind []*job
	kept := l.queue[:0]
	for _, q := range l.queue {
		if q.fifo && q.group == j.group {
			behind = append(behind, q)
		} else {
			kept = append(kept, q)
		}
	}
	clear(l.queue[len(kept):])
	l.queue = kept
	return behind
}

// holdBack returns messages queued behind a failed one of their group to
// pending (see groupDone).
func (m *Module) holdBack(ctx context.Context, jobs []*job) {
	if len(jobs) == 0 {
		return
	}
	ids := make([]string, len(jobs))
	var size int64
	for i, j := range jobs {
		ids[i] = j.id
		size += int64(len(j.payload))
	}
	m.hold.release(ids, size)
	// A failure leaves them leased: the lease runs out and the group's
	// next pull takes them in order.
	if _, err := m.handBack(ctx, ids, false); ctx.Err() == nil {
		m.pgOut.Report("hand back ordered messages", err)
	}
}
