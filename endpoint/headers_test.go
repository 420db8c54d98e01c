package endpoint

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ethhook/ethhook/hook"
)

func TestCustomHeadersAreBoundedAndNeverReserved(t *testing.T) {
	many := map[string]string{}
	for i := 0; i <= MaxHeaders; i++ {
		many[fmt.Sprintf("X-H%d", i)] = "v"
	}
	big := map[string]string{}
	for i := 0; i < 5; i++ {
		big[fmt.Sprintf("X-Big%d", i)] = strings.Repeat("v", MaxHeaderValue)
	}
	for _, c := range []struct {
		h        map[string]string
		key, msg string
	}{
		{map[string]string{"webhook-signature": "v1,x"}, "headers.webhook-signature", "set by EthHook"},
		{map[string]string{"Webhook-Anything": "x"}, "headers.Webhook-Anything", "set by EthHook"},
		{map[string]string{"Transfer-Encoding": "chunked"}, "headers.Transfer-Encoding", "hop-by-hop"},
		{map[string]string{"Host": "evil"}, "headers.Host", "set by EthHook"},
		{map[string]string{"Bad Name": "x"}, "headers.Bad Name", "token characters"},
		{map[string]string{"X-A": "line\r\nInjected: 1"}, "headers.X-A", "control characters"},
		{map[string]string{"X-A": strings.Repeat("v", MaxHeaderValue+1)}, "headers.X-A", "longer than 1024"},
		{many, "headers", "at most 10 headers"},
		{big, "headers", "at most 4096"},
		{map[string]string{"x-a": "1", "X-A": "2"}, "", "given twice"},
	} {
		e := hook.Endpoint{URL: "https://r.example/", Filter: hook.Filter{Chains: []uint64{1}}, Headers: c.h}
		err := validate(&e)
		ve, ok := err.(hook.FieldErrors)
		if !ok {
			t.Fatalf("%v: %v, want a ValidationError", c.h, err)
		}
		found := false
		for k, m := range ve {
			if (c.key == "" || k == c.key) && strings.Contains(m, c.msg) {
				found = true
			}
		}
		if !found {
			t.Errorf("headers %.80v: fields %v, want %s: ...%s", c.h, ve, c.key, c.msg)
		}
	}
	e := hook.Endpoint{URL: "https://r.example/", Filter: hook.Filter{Chains: []uint64{1}}, Headers: map[string]string{"x-tenant": "acme", "authorization": "Bearer x"}}
	if err := validate(&e); err != nil {
		t.Fatal(err)
	}
	if e.Headers["X-Tenant"] != "acme" || e.Headers["Authorization"] != "Bearer x" || len(e.Headers) != 2 {
		t.Fatalf("headers not canonicalized: %v", e.Headers)
	}
}
