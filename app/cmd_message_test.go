package app

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/internal/testenv"
)

func TestMessageCommandsListShowAndReplay(t *testing.T) {
	cfg := config.Defaults()
	cfg.DatabaseURL = testenv.PGURL(t)
	cfg.Redis.URL = testenv.RedisURL()
	_, prefix := testenv.Redis(t)
	cfg.Redis.Prefix = prefix
	rt := &Runtime{Cfg: cfg}
	defer rt.Close()
	pool, err := pgxpool.New(context.Background(), cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for _, q := range []string{
		`INSERT INTO applications (id, name) VALUES ('app_1', 'a')`,
		`INSERT INTO endpoints (id, app_id, url, secret_enc) VALUES ('ep_1', 'app_1', 'https://x.example', '\x00')`,
		`INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, payload)
		 VALUES ('msg_1', 'app_1', 'ep_1', '1:0xa:0', 'log', '1:0xa:0', 1, 7, '{"k": 1}'),
		        ('msg_2', 'app_1', 'ep_1', '1:0xa:1', 'log', '1:0xa:1', 1, 9, '{"k": 2}')`,
		`INSERT INTO message_states (id, app_id, endpoint_id, state, attempts, type, block_number)
		 VALUES ('msg_1', 'app_1', 'ep_1', 'dead', 8, 'log', 7), ('msg_2', 'app_1', 'ep_1', 'succeeded', 1, 'log', 9)`,
		`INSERT INTO delivery_history (message_id, endpoint_id, app_id, attempt, status_code, error_class, error)
		 VALUES ('msg_1', 'ep_1', 'app_1', 8, 503, 'http_5xx', 'HTTP 503')`,
	} {
		if _, err := pool.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	out, err := runCmd(t, newMessageCmd(rt), "list", "--endpoint", "ep_1", "--state", "dead", "--json")
	var page struct{ Data []struct{ ID string } }
	if err != nil || json.Unmarshal([]byte(out), &page) != nil || len(page.Data) != 1 || page.Data[0].ID != "msg_1" {
		t.Fatalf("list: %v\n%s", err, out)
	}
	// Search by decoded argument and by last status.
	if _, err := pool.Exec(context.Background(), `UPDATE messages SET payload = '{"decoded":{"args":{"to":"0xab"}}}' WHERE id = 'msg_2'`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(context.Background(), `UPDATE message_states SET last_status = 201 WHERE id = 'msg_2'`); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--arg", "to:0xAB"}, {"--status-code", "201"}} {
		out, err := runCmd(t, newMessageCmd(rt), append([]string{"list", "--json"}, args...)...)
		var found struct{ Data []struct{ ID string } }
		if err != nil || json.Unmarshal([]byte(out), &found) != nil || len(found.Data) != 1 || found.Data[0].ID != "msg_2" {
			t.Fatalf("list %v: %v\n%s", args, err, out)
		}
	}
	if _, err := runCmd(t, newMessageCmd(rt), "list", "--arg", "to"); err == nil || !strings.Contains(err.Error(), "--arg") {
		t.Fatalf("list --arg to: %v", err)
	}
	if out, err := runCmd(t, newMessageCmd(rt), "show", "msg_1"); err != nil || !strings.Contains(out, "#8") || !strings.Contains(out, "HTTP 503") {
		t.Fatalf("show: %v\n%s", err, out)
	}
	if out, err := runCmd(t, newMessageCmd(rt), "replay", "msg_1"); err != nil || !strings.Contains(out, "webhook-id 1:0xa:0") {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	out, err = runCmd(t, newMessageCmd(rt), "replay-range", "--endpoint", "ep_1", "--from-block", "8", "--json")
	if err != nil || !strings.Contains(out, `"replayed": 1`) {
		t.Fatalf("replay-range: %v\n%s", err, out)
	}
	if _, err := runCmd(t, newMessageCmd(rt), "show", "msg_nope"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("show missing: %v", err)
	}
}
