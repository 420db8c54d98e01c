package deliver

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/message"
)

func TestReplayByRangeRedeliversDeadMessagesWithSameWebhookID(t *testing.T) {
	e := newEnv(t)
	var fail atomic.Bool
	fail.Store(true)
	rc := newReceiver(t, func(int, *http.Request) (int, http.Header) {
		if fail.Load() {
			return 500, nil
		}
		return 200, nil
	})
	app := e.app(t, "unlimited")
	ep, _ := e.endpoint(t, app, rc.URL, epOpt{schedule: "0s"})
	other, _ := e.endpoint(t, app, rc.URL, epOpt{})
	want := map[string]string{}
	var dead []string
	for i := int64(0); i < 4; i++ {
		id, wid := e.insertMessage(t, app, ep, "", 500+i)
		e.offer(t, id, ep)
		want[id] = wid
		dead = append(dead, id)
	}
	e.start(t)
	for _, id := range dead {
		e.waitState(t, id, hook.StateDead)
	}
	fail.Store(false)
	okID, _ := e.message(t, app, other, "")
	e.waitState(t, okID, hook.StateSucceeded)
	before := rc.count()

	svc := message.New(e.pool, e.rdb, e.keys())
	from, to := int64(501), int64(502)
	n, err := svc.ReplayRange(context.Background(), hook.Operator, message.Range{EndpointID: ep, FromBlock: &from, ToBlock: &to, OnlyFailed: true})
	if err != nil || n != 2 {
		t.Fatalf("ReplayRange: %d, %v", n, err)
	}
	for _, id := range dead[1:3] {
		e.waitState(t, id, hook.StateSucceeded)
	}
	time.Sleep(500 * time.Millisecond)
	got := rc.got()[before:]
	if len(got) != 2 {
		t.Fatalf("replay sent %d webhooks, want 2", len(got))
	}
	for _, r := range got {
		wid := r.header.Get("webhook-id")
		if wid != want[dead[1]] && wid != want[dead[2]] {
			t.Fatalf("replayed webhook-id %q is not the original", wid)
		}
	}
	for _, id := range []string{dead[0], dead[3]} {
		if s := e.msg(t, id).State; s != hook.StateDead {
			t.Fatalf("message outside the block range is %s", s)
		}
	}
	_, atts, err := svc.Get(context.Background(), hook.Operator, dead[1])
	if err != nil || len(atts) != 2 || atts[0].Attempt != 1 || atts[1].Attempt != 2 || *atts[1].StatusCode != 200 {
		t.Fatalf("attempt log after replay: %+v, %v", atts, err)
	}
}
