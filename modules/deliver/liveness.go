package deliver

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/sleep"
	"github.com/ethhook/ethhook/internal/streams"
	"github.com/ethhook/ethhook/msgstate"
)

// Liveness: a deliver process killed without a chance to hand back (SIGKILL,
// a lost host) leaves its messages leased to it. Its lease runs out only
// after LeaseTimeout (60 s), and the sweeper comes after that. To retry them
// within seconds instead, every process keeps a liveness key in Redis,
// renewed every livenessEvery with a livenessTTL, and lists itself in the
// owners set. Every process checks the owners each livenessEvery; the
// messages of an owner whose key is gone are handed back to pending and
// offered again at once. What it was sending at its last renewal is listed
// beside (sendingKey, kept for LeaseTimeout): those attempts are recorded as
// interrupted, as the receiver may have had them. Whoever gets the same
// webhook-id again should treat it as the retry it is.
//
// A process whose Redis is away for longer than livenessTTL looks dead to
// the others: its messages are sent again by them (at least once, as with
// an expired lease). An outage every process sees (a Redis restart, a
// cluster failover, which takes 15 s and more with the default
// cluster-node-timeout) lets every liveness key run out at once; so a
// process whose own renewal failed reclaims nobody until it has renewed for
// livenessGrace, time for the others to renew too. Otherwise every process
// would take the others' messages and send them all again. A process that
// never wrote a liveness key (an older version) is not in the owners set
// and is left to its lease.
const (
	livenessEvery = time.Second
	livenessTTL   = 5 * time.Second
	livenessGrace = livenessTTL
)

func (m *Module) ownersKey() string              { return m.keys.Prefix + "{deliver}:owners" }
func (m *Module) aliveKey(owner string) string   { return m.keys.Prefix + "{deliver}:alive:" + owner }
func (m *Module) sendingKey(owner string) string { return m.keys.Prefix + "{deliver}:sending:" + owner }

// sendingSet is the ids of the messages whose attempt is under way here.
type sendingSet struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

func (s *sendingSet) add(id string) { s.mu.Lock(); s.ids[id] = struct{}{}; s.mu.Unlock() }
func (s *sendingSet) done(id string) {
	s.mu.Lock()
	delete(s.ids, id)
	s.mu.Unlock()
}

func (s *sendingSet) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.ids))
	for id := range s.ids {
		out = append(out, id)
	}
	return out
}

// liveness renews this process's liveness key and reclaims the messages of
// owners whose key is gone.
func (m *Module) liveness(ctx context.Context) error {
	var g renewals
	for {
		now := time.Now()
		if g.note(m.renewLiveness(ctx), now) {
			m.reclaimDead(ctx)
		}
		if !sleep.For(ctx, livenessEvery) {
			return ctx.Err()
		}
	}
}

// renewals remembers when this process last failed to renew its liveness
// key (wall time).
type renewals struct{ failed time.Time }

// note records a renewal's outcome at now and reports whether others may
// be judged dead: not until livenessGrace after this process's own last
// failure, since the others may have been cut off by the same outage.
func (g *renewals) note(ok bool, now time.Time) bool {
	if !ok {
		g.failed = now
		return false
	}
	return g.failed.IsZero() || now.Sub(g.failed) >= livenessGrace
}

// renewLiveness renews the liveness key and reports whether it did.
func (m *Module) renewLiveness(ctx context.Context) bool {
	b := m.rdb.B()
	// The key before the set entry: an owner listed without its key is
	// taken for dead.
	for _, r := range m.rdb.DoMulti(ctx,
		b.Set().Key(m.aliveKey(m.owner)).Value("1").Px(livenessTTL).Build(),
		b.Sadd().Key(m.ownersKey()).Member(m.owner).Build(),
		b.Set().Key(m.sendingKey(m.owner)).Value(strings.Join(m.sending.list(), " ")).Px(m.cfg.LeaseTimeout).Build(),
	) {
		if err := r.Error(); err != nil {
			if ctx.Err() == nil {
				m.redisOut.Fail("renew liveness", err)
			}
			return false
		}
	}
	m.redisOut.OK()
	return true
}

// endLiveness removes this process's keys on a clean stop (after it handed
// its messages back).
func (m *Module) endLiveness(ctx context.Context) {
	b := m.rdb.B()
	m.rdb.DoMulti(ctx,
		b.Srem().Key(m.ownersKey()).Member(m.owner).Build(),
		b.Del().Key(m.aliveKey(m.owner), m.sendingKey(m.owner)).Build())
}

// reclaimDead finds owners whose liveness key is gone and reclaims their
// messages. A Redis error means "unknown", never "dead".
func (m *Module) reclaimDead(ctx context.Context) {
	owners, err := m.rdb.Do(ctx, m.rdb.B().Smembers().Key(m.ownersKey()).Build()).AsStrSlice()
	if err != nil {
		return // reported by renewLiveness
	}
	var others []string
	for _, o := range owners {
		if o != m.owner {
			others = append(others, o)
		}
	}
	if len(others) == 0 {
		return
	}
	cmds := make([]rueidis.Completed, 0, len(others))
	for _, o := range others {
		cmds = append(cmds, m.rdb.B().Exists().Key(m.aliveKey(o)).Build())
	}
	for i, r := range m.rdb.DoMulti(ctx, cmds...) {
		n, err := r.AsInt64()
		if err != nil || n != 0 {
			continue
		}
		if err := m.reclaim(ctx, others[i]); err != nil && ctx.Err() == nil {
			m.log.Warn("reclaim messages of a dead deliver process", zap.String("owner", others[i]), zap.Error(err))
		}
	}
}

// reclaim hands the messages of a dead owner back to pending and offers
// them again; those it was sending are recorded as an interrupted attempt.
// The conditional UPDATE makes it safe for several processes at once: each
// message is reclaimed, and its attempt recorded, by one of them.
func (m *Module) reclaim(ctx context.Context, owner string) error {
	sending, err := m.rdb.Do(ctx, m.rdb.B().Get().Key(m.sendingKey(owner)).Build()).ToString()
	if err != nil && !rueidis.IsRedisNil(err) {
		return fmt.Errorf("read what %s was sending: %w", owner, err)
	}
	interrupted := strings.Fields(sending)
	var pairs []hook.Job
	var recorded int
	err = pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		var err error
		if pairs, err = msgstate.Reclaim(ctx, tx, owner, interrupted, interruptedError); err != nil {
			return fmt.Errorf("hand back messages of %s: %w", owner, err)
		}
		if len(pairs) == 0 || len(interrupted) == 0 {
			return nil
		}
		back := make([]string, len(pairs))
		for i, p := range pairs {
			back[i] = p.MessageID
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO delivery_history (message_id, endpoint_id, app_id, attempt, error_class, error, created_at)
			SELECT id, endpoint_id, app_id, attempts, 'interrupted', $3, now()
			FROM message_states WHERE id = ANY($1) AND id = ANY($2)`, back, interrupted, interruptedError)
		if err != nil {
			return fmt.Errorf("record interrupted attempts of %s: %w", owner, err)
		}
		recorded = int(tag.RowsAffected())
		return nil
	})
	if err != nil {
		return err
	}
	if err := streams.Offer(ctx, m.rdb, m.keys, pairs...); err != nil {
		return err // the messages are pending: the sweeper offers them
	}
	b := m.rdb.B()
	m.rdb.DoMulti(ctx,
		b.Srem().Key(m.ownersKey()).Member(owner).Build(),
		b.Del().Key(m.sendingKey(owner)).Build())
	m.log.Info("reclaimed messages of a dead deliver process", zap.String("owner", owner),
		zap.Int("messages", len(pairs)), zap.Int("interrupted", recorded))
	// What it had read and not claimed died with it too: jobs read from
	// the stream, and the backlog its lanes were to pull. Those messages
	// are pending with no job; sweep for them now, not after three sweep
	// intervals (faults: kill-deliver-1 was once 30 s late).
	m.sweepLostJobs()
	return nil
}

const interruptedError = "the deliver process making this attempt stopped before its answer was recorded"
