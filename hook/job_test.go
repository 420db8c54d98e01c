package hook

import "testing"

func TestJobRoundTripsAndRefusesEntriesWithoutBothIDs(t *testing.T) {
	j := Job{MessageID: "msg_1", EndpointID: "ep_1"}
	f := j.Fields()
	m := map[string]string{}
	for i := 0; i+1 < len(f); i += 2 {
		m[f[i]] = f[i+1]
	}
	if len(m) != 2 {
		t.Fatalf("Fields() = %v: want two field-value pairs", f)
	}
	got, err := ParseJob(m)
	if err != nil || got != j {
		t.Fatalf("ParseJob(%v) = %+v, %v; want %+v", m, got, err, j)
	}
	for _, bad := range []map[string]string{
		nil,
		{"message_id": "msg_1"},
		{"endpoint_id": "ep_1"},
		{"message_id": "", "endpoint_id": "ep_1"},
		{"id": "msg_1", "endpoint": "ep_1"},
	} {
		if _, err := ParseJob(bad); err == nil {
			t.Errorf("ParseJob(%v) accepted", bad)
		}
	}
}
