package testenv

import (
	"context"
	"testing"
)

func TestPGGivesEachTestItsOwnMigratedDatabase(t *testing.T) {
	a, b := PG(t), PG(t)
	ctx := context.Background()
	if _, err := a.Exec(ctx, "INSERT INTO applications (id, name) VALUES ('app_x', 'x')"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(ctx, "SELECT count(*) FROM applications").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("second database sees %d applications of the first", n)
	}
}

func TestRedisPrefixKeysAreDeletedAtCleanup(t *testing.T) {
	var prefix string
	t.Run("writer", func(t *testing.T) {
		c, p := Redis(t)
		prefix = p
		if err := c.Do(context.Background(), c.B().Set().Key(p+"k").Value("v").Build()).Error(); err != nil {
			t.Fatal(err)
		}
	})
	c, _ := Redis(t)
	n, err := c.Do(context.Background(), c.B().Exists().Key(prefix+"k").Build()).AsInt64()
	if err != nil || n != 0 {
		t.Fatalf("key under %q survived cleanup: n=%d err=%v", prefix, n, err)
	}
}
