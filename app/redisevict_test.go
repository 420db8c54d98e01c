package app

import (
	"context"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// A Redis whose maxmemory-policy may evict keys gets one warning naming
// the policy; one with noeviction (Redis's default) gets none.
func TestRedisThatMayEvictKeysIsWarnedAbout(t *testing.T) {
	r := startPrivateRedis(t)
	c, err := openRedis(r.url())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for _, policy := range []string{"noeviction", "allkeys-lru", "volatile-lru"} {
		if err := c.Do(ctx, c.B().ConfigSet().ParameterValue().ParameterValue("maxmemory-policy", policy).Build()).Error(); err != nil {
			t.Fatal(err)
		}
		core, logs := observer.New(zap.WarnLevel)
		warnIfRedisEvicts(ctx, c, zap.New(core))
		got := logs.All()
		if policy == "noeviction" {
			if len(got) != 0 {
				t.Errorf("noeviction: warned %v", got)
			}
			continue
		}
		if len(got) != 1 || got[0].ContextMap()["maxmemory_policy"] != policy {
			t.Errorf("%s: warnings %v, want one naming the policy", policy, got)
		}
	}
}
