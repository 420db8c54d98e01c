package process

import (
	"fmt"
	"testing"
)

func TestMessageRowsGoInEndpointOrderKeepingEachEndpointsOrder(t *testing.T) {
	var rows []msgRow
	for i := 0; i < 30; i++ {
		rows = append(rows, msgRow{id: fmt.Sprintf("msg_%02d", i), endpointID: fmt.Sprintf("ep_%d", (i*7)%5), payload: []byte{byte(i)}})
	}
	out := messageRows(rows)
	for i := 1; i < len(rows); i++ {
		a, b := out.EndpointIDs[i-1], out.EndpointIDs[i]
		if a > b || a == b && out.IDs[i-1] > out.IDs[i] {
			t.Fatalf("row %d: (%s, %s) after (%s, %s)", i, b, out.IDs[i], a, out.IDs[i-1])
		}
		if want := fmt.Sprintf("msg_%02d", out.Payloads[i][0]); out.IDs[i] != want {
			t.Fatalf("row %d: columns out of step: id %s, payload of %s", i, out.IDs[i], want)
		}
	}
	if rows[0].id != "msg_00" || rows[1].id != "msg_01" {
		t.Fatal("the caller's rows were reordered")
	}
}
