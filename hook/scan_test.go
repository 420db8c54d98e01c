package hook

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// referenceParse is ParseEntry as it was before the scanner: encoding/json
// alone, the reference for what the format accepts.
func referenceParse(fields map[string]string) (Event, error) {
	var e Event
	body, ok := fields["event"]
	if !ok {
		return e, fmt.Errorf("no event field")
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		return e, err
	}
	if id := fields["id"]; id != "" {
		e.ID = id
	}
	if t := fields["type"]; t != "" {
		e.Type = t
	}
	if e.ID == "" || (e.Type != TypeLog && e.Type != TypeLogRemoved) {
		return e, fmt.Errorf("bad id or type")
	}
	return e, nil
}

func randomEvent(rng *rand.Rand) Event {
	hex := func(n int) string {
		const digits = "0123456789abcdef"
		b := []byte("0x" + strings.Repeat("0", n))
		for i := 2; i < len(b); i++ {
			b[i] = digits[rng.IntN(16)]
		}
		return string(b)
	}
	num := func() uint64 {
		switch rng.IntN(4) {
		case 0:
			return 0
		case 1:
			return math.MaxUint64
		}
		return rng.Uint64() >> rng.IntN(64)
	}
	e := Event{Type: []string{TypeLog, TypeLogRemoved}[rng.IntN(2)],
		Chain:       Chain{ID: num(), Name: []string{"eth", "base", "devnet", ""}[rng.IntN(4)]},
		Block:       Block{Number: num(), Hash: hex(64), Timestamp: num()},
		Transaction: Transaction{Hash: hex(64), Index: uint(num())},
		Log:         Log{Address: hex(40), Data: hex(2 * rng.IntN(200)), Index: uint(num())}}
	if rng.IntN(2) == 0 {
		e.Block.ParentHash = hex(64)
	}
	switch n := rng.IntN(6); n {
	case 5:
		e.Log.Topics = nil
	default:
		e.Log.Topics = make([]string, n)
		for i := range e.Log.Topics {
			e.Log.Topics[i] = hex(64)
		}
	}
	e.ID = EventID(e.Chain.ID, e.Block.Hash, e.Log.Index)
	return e
}

func TestScannerReadsEveryEntryFieldsWrites(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 2000; i++ {
		ev := randomEvent(rng)
		f, err := ev.Fields()
		if err != nil {
			t.Fatal(err)
		}
		var got Event
		if !scanEvent(f["event"], &got) {
			t.Fatalf("scanner refused %s", f["event"])
		}
		want, err := referenceParse(f)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) || (got.Log.Topics == nil) != (want.Log.Topics == nil) {
			t.Fatalf("scanned %+v\nwant    %+v", got, want)
		}
	}
}

// hostileBodies are entries the scanner must refuse: malformed JSON, and
// valid JSON outside its strict shape (encoding/json then decides).
var hostileBodies = []string{
	``, ` `, `{`, `}`, `[]`, `null`, `"x"`, `{"id":"a"`, `{"id":"a",}`, `{"id":"a"}x`, `{"id":"a"}{}`,
	`{"id":"a","id":"b"}`, `{"chain":{"id":1},"chain":{"name":"eth"}}`,
	`{"ID":"a"}`, `{"Id":"a","type":"log"}`, `{"extra":1}`, `{"log":{"topics":["0x1"],"extra":[]}}`,
	`{"id":"a\"b"}`, `{"id":"\u0061"}`, `{"id":"é"}`, "{\"id\":\"\xff\"}", "{\"id\":\"a\x00\"}", "{\"id\":\"a\x7f\"}",
	`{"id":null}`, `{"chain":null}`, `{"id":1}`, `{"id":"a","type":true}`,
	`{"chain":{"id":-1}}`, `{"chain":{"id":01}}`, `{"chain":{"id":1.0}}`, `{"chain":{"id":1e3}}`, `{"chain":{"id":"1"}}`,
	`{"chain":{"id":18446744073709551616}}`, `{"chain":{"id":99999999999999999999}}`, `{"chain":{"id":}}`,
	`{"log":{"topics":["a","b","c","d","e"]}}`, `{"log":{"topics":[1]}}`, `{"log":{"topics":["a",]}}`,
	`{"log":{"topics":[["a"]]}}`, `{"log":{"topics":nul}}`, `{"log":{"topics":nullx}}`, `{"log":{"topics":"0x"}}`,
	`{"log":{"topics":[` + strings.Repeat(`"0x",`, 100000) + `"0x"]}}`,
	`{"log":` + strings.Repeat(`[`, 100000) + strings.Repeat(`]`, 100000) + `}`,
	`{"x":` + strings.Repeat(`{"x":`, 10000) + `1` + strings.Repeat(`}`, 10001),
	`{"id":"` + strings.Repeat("a", 1<<20),
}

func TestScannerRefusesHostileEntriesAndParseEntryStillAgrees(t *testing.T) {
	for i, body := range hostileBodies {
		var e Event
		if scanEvent(body, &e) {
			t.Errorf("body %d (%.60q): scanner accepted it", i, body)
		}
		for _, fields := range []map[string]string{
			{"event": body},
			{"id": "1:0xab:0", "type": TypeLog, "event": body},
		} {
			want, werr := referenceParse(fields)
			got, gerr := ParseEntry(fields)
			if (werr == nil) != (gerr == nil) || !reflect.DeepEqual(got, want) {
				t.Errorf("body %d (%.60q): ParseEntry = %+v, %v; encoding/json = %+v, %v", i, body, got, gerr, want, werr)
			}
		}
	}
}

// TestScannerAcceptsWhitespaceAndAnyFieldOrder: valid JSON in its shape
// written by another producer.
func TestScannerAcceptsWhitespaceAndAnyFieldOrder(t *testing.T) {
	body := " {\n\t\"log\" : { \"index\" : 3 , \"data\":\"0x\", \"topics\" : [ ] , \"address\":\"0xaa\" } ,\r\n" +
		`"type":"log","chain":{"name":"eth","id":1},"block":{"timestamp":5,"number":0,"hash":"0xbb"},` +
		`"transaction":{},"id":"1:0xbb:3"} `
	var got Event
	if !scanEvent(body, &got) {
		t.Fatal("scanner refused it")
	}
	want, err := referenceParse(map[string]string{"event": body})
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("scanned %+v, want %+v (%v)", got, want, err)
	}
}

func TestParseEntryAllocatesOnlyTheTopics(t *testing.T) {
	ev := randomEvent(rand.New(rand.NewPCG(7, 8)))
	ev.Log.Topics = []string{"0x01", "0x02", "0x03"}
	f, err := ev.Fields()
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseEntry(f) }); n > 1 {
		t.Fatalf("ParseEntry allocates %v times per entry, want 1 (the topics)", n)
	}
}

func FuzzParseEntryAgreesWithEncodingJSON(f *testing.F) {
	rng := rand.New(rand.NewPCG(9, 10))
	for i := 0; i < 20; i++ {
		ev := randomEvent(rng)
		fields, _ := ev.Fields()
		f.Add(fields["event"])
	}
	for _, b := range hostileBodies[:len(hostileBodies)-4] {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body string) {
		fields := map[string]string{"id": "1:0xab:0", "event": body}
		want, werr := referenceParse(fields)
		got, gerr := ParseEntry(fields)
		if (werr == nil) != (gerr == nil) || !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseEntry = %+v, %v; encoding/json = %+v, %v", got, gerr, want, werr)
		}
	})
}
