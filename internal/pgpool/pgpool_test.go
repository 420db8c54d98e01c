package pgpool_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ethhook/ethhook/internal/pgpool"
	"github.com/ethhook/ethhook/internal/testenv"
)

// Every pool runs with jit off (see ParseConfig), unless its URL asks
// otherwise; the setting is checked on the server, per connection.
func TestPoolsRunWithoutJITUnlessTheURLSaysSo(t *testing.T) {
	u := testenv.PGURL(t)
	ctx := context.Background()
	for _, c := range []struct{ url, want string }{
		{u, "off"},
		{u + map[bool]string{false: "?", true: "&"}[strings.Contains(u, "?")] + "jit=on", "on"},
	} {
		pool, err := pgpool.New(ctx, c.url)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		err = pool.QueryRow(ctx, `SHOW jit`).Scan(&got)
		pool.Close()
		if err != nil || got != c.want {
			t.Errorf("%s: jit %q (%v), want %q", c.url, got, err, c.want)
		}
	}
}
