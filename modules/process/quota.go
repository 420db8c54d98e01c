package process

import (
	"context"

	"github.com/ethhook/ethhook/hook"
)

// quotaStates returns the state a new message of an application starts
// in: pending, or quota_exceeded while the application is over its quota.
// It asks once per application (one call of quotaStates serves one pass:
// a history read, a release, an orphaned block); a failed check leaves
// the message pending.
func (m *Module) quotaStates(ctx context.Context) func(appID string) string {
	states := map[string]string{}
	return func(appID string) string {
		if s, ok := states[appID]; ok {
			return s
		}
		s := hook.StatePending
		if over, err := m.quota.QuotaExceeded(ctx, appID); err == nil && over {
			s = hook.StateQuotaExceeded
		}
		states[appID] = s
		return s
	}
}
