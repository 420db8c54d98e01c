package deliver

import (
	"context"
	"fmt"
	"time"
)

// rateKey is an endpoint's GCRA state.
func (m *Module) rateKey(endpointID string) string {
	return m.keys.Prefix + "deliver:rate:{" + endpointID + "}"
}

// rateWait asks the shared GCRA limiter (gcra.lua, one key per endpoint, so
// the limit holds across deliver processes); 0 means send now.
func (m *Module) rateWait(ctx context.Context, ep *endpoint) time.Duration {
	interval := int64(time.Second/time.Microsecond) / int64(ep.rateLimit)
	us, err := gcraScript.Exec(ctx, m.rdb, []string{m.rateKey(ep.id)}, []string{fmt.Sprint(interval), "0"}).AsInt64()
	if err != nil {
		if ctx.Err() == nil {
			m.redisOut.Fail("rate limit", err)
		}
		return 100 * time.Millisecond // fail closed but keep going
	}
	m.redisOut.OK()
	return time.Duration(us) * time.Microsecond
}
