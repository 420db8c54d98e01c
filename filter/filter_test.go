package filter

import (
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/ethhook/ethhook/decode"
	"github.com/ethhook/ethhook/hook"
)

const (
	tokenA = "0x97be09f2523b39b835da9ea3857cfa1d3c660cbb"
	tokenB = "0xdac17f958d2ee523a2206206994597c13d831ec7"
	alice  = "0x9c0649d7325990d98375f7864ea167b5eadcd46a"
	bob    = "0xf848e97469538830b0b147152524184a255b9106"
	carol  = "0x7a250d5630b4cf539739df2c5dacb4c659f2488d"
)

func word(addr string) string { return "0x000000000000000000000000" + strings.TrimPrefix(addr, "0x") }

func erc20(chain uint64, token, from, to string, value int64) *hook.Event {
	data, _ := abi.Arguments{{Type: mustType("uint256")}}.Pack(big.NewInt(value))
	return &hook.Event{ID: "x", Type: hook.TypeLog, Chain: hook.Chain{ID: chain}, Log: hook.Log{
		Address: token,
		Topics:  []string{decode.TopicOf("Transfer(address,address,uint256)"), word(from), word(to)},
		Data:    "0x" + hex.EncodeToString(data),
	}}
}

func erc721(token, from, to string, id int64) *hook.Event {
	return &hook.Event{ID: "y", Type: hook.TypeLog, Chain: hook.Chain{ID: 1}, Log: hook.Log{
		Address: token,
		Topics:  []string{decode.TopicOf("Transfer(address,address,uint256)"), word(from), word(to), "0x" + common.BigToHash(big.NewInt(id)).Hex()[2:]},
		Data:    "0x",
	}}
}

func mustType(t string) abi.Type {
	ty, err := abi.NewType(t, "", nil)
	if err != nil {
		panic(err)
	}
	return ty
}

// allTypes is an event with an argument of every kind conditions support.
const allTypesDecl = "event Mixed(address indexed who, string indexed tag, uint8 small, int256 delta, int32 tiny, bool ok, bytes blob, bytes4 sel, string note, uint256 big)"

func mixed(who string, tag string, small uint8, delta int64, tiny int32, ok bool, blob []byte, sel [4]byte, note string, bigv *big.Int) *hook.Event {
	args := abi.Arguments{
		{Type: mustType("uint8")}, {Type: mustType("int256")}, {Type: mustType("int32")}, {Type: mustType("bool")},
		{Type: mustType("bytes")}, {Type: mustType("bytes4")}, {Type: mustType("string")}, {Type: mustType("uint256")},
	}
	data, err := args.Pack(small, big.NewInt(delta), tiny, ok, blob, sel, note, bigv)
	if err != nil {
		panic(err)
	}
	return &hook.Event{ID: "z", Type: hook.TypeLog, Chain: hook.Chain{ID: 1}, Log: hook.Log{
		Address: tokenA,
		Topics: []string{decode.TopicOf("Mixed(address,string,uint8,int256,int32,bool,bytes,bytes4,string,uint256)"),
			word(who), "0x" + hex.EncodeToString(crypto.Keccak256([]byte(tag)))},
		Data: "0x" + hex.EncodeToString(data),
	}}
}

func TestMatchTable(t *testing.T) {
	big1e30, _ := new(big.Int).SetString("1000000000000000000000000000000", 10)
	mx := mixed(alice, "gold", 200, -5, -70000, true, []byte{0xbe, 0xef}, [4]byte{0xa9, 0x05, 0x9c, 0xbb}, "hello world", big1e30)
	transfer := erc20(1, tokenA, alice, bob, 5000)
	small := erc20(1, tokenA, alice, bob, 999)
	otherToken := erc20(1, tokenB, alice, bob, 5000)
	otherChain := erc20(8453, tokenA, alice, bob, 5000)
	nft := erc721(tokenA, alice, carol, 1479)
	tests := []struct {
		name  string
		f     hook.Filter
		ev    *hook.Event
		match bool
	}{
		{"chain only matches any log", hook.Filter{Chains: []uint64{1}}, transfer, true},
		{"other chain", hook.Filter{Chains: []uint64{1}}, otherChain, false},
		{"several chains", hook.Filter{Chains: []uint64{1, 8453}}, otherChain, true},
		{"address any of (hit)", hook.Filter{Chains: []uint64{1}, Addresses: []string{tokenB, tokenA}}, transfer, true},
		{"address any of (miss)", hook.Filter{Chains: []uint64{1}, Addresses: []string{tokenB}}, transfer, false},
		{"address upper-case input", hook.Filter{Chains: []uint64{1}, Addresses: []string{strings.ToUpper(tokenA[:2]) + strings.ToUpper(tokenA[2:])}}, transfer, true},
		{"topic0 exact", hook.Filter{Chains: []uint64{1}, Topics: [][]string{{decode.TopicOf("Transfer(address,address,uint256)")}}}, transfer, true},
		{"topic0 other", hook.Filter{Chains: []uint64{1}, Topics: [][]string{{decode.TopicOf("Approval(address,address,uint256)")}}}, transfer, false},
		{"topic0 wildcard, topic2 any of (hit)", hook.Filter{Chains: []uint64{1}, Topics: [][]string{nil, nil, {word(carol), word(bob)}}}, transfer, true},
		{"topic0 wildcard, topic2 (miss)", hook.Filter{Chains: []uint64{1}, Topics: [][]string{nil, nil, {word(carol)}}}, transfer, false},
		{"topic3 required but log has 3 topics", hook.Filter{Chains: []uint64{1}, Topics: [][]string{nil, nil, nil, {word(carol)}}}, transfer, false},
		{"signature", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer(address,address,uint256)"}}, transfer, true},
		{"signature matches ERC-721 too", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer(address,address,uint256)"}}, nft, true},
		{"other signature", hook.Filter{Chains: []uint64{1}, Events: []string{"Approval(address,address,uint256)"}}, transfer, false},
		{"name from built-ins", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}}, transfer, true},
		{"several events any of", hook.Filter{Chains: []uint64{1}, Events: []string{"Approval", "Transfer"}}, transfer, true},
		{"human-readable declaration", hook.Filter{Chains: []uint64{1}, Events: []string{"event Transfer(address indexed src, address indexed dst, uint256 wad)"}, Where: []string{"wad > 10"}}, transfer, true},
		{"address and event and address", hook.Filter{Chains: []uint64{1}, Addresses: []string{tokenB}, Events: []string{"Transfer"}}, otherToken, true},

		{"uint >= hit", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer(address,address,uint256)"}, Where: []string{"value >= 1000"}}, transfer, true},
		{"uint >= miss", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer(address,address,uint256)"}, Where: []string{"value >= 1000"}}, small, false},
		{"uint == hex", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"value == 0x1388"}}, transfer, true},
		{"uint !=", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"value != 5000"}}, transfer, false},
		{"uint <", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"value < 1000"}}, small, true},
		{"uint <=", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"value <= 999"}}, small, true},
		{"uint >", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"value > 999"}}, small, false},
		{"uint in", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"value in (1, 999, 3)"}}, small, true},
		{"address ==", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"to == " + bob}}, transfer, true},
		{"address == mixed case", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"to == 0xF848e97469538830b0b147152524184a255b9106"}}, transfer, true},
		{"address !=", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"to != " + bob}}, transfer, false},
		{"address in (hit)", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"from in (" + carol + "," + alice + ")"}}, transfer, true},
		{"address in (miss)", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"from in (" + carol + ")"}}, transfer, false},
		{"ERC-721 arg absent from ERC-20 decoding is false", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"tokenId == 1479"}}, transfer, false},
		{"ERC-721 tokenId", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"tokenId == 1479"}}, nft, true},

		{"uint8", hook.Filter{Chains: []uint64{1}, Events: []string{allTypesDecl}, Where: []string{"small > 199"}}, mx, true},
		{"uint8 miss", hook.Filter{Chains: []uint64{1}, Events: []string{allTypesDecl}, Where: []string{"small >= 201"}}, mx, false},
		{"negative int256", hook.Filter{Chains: []uint64{1}, Events: []string{allTypesDecl}, Where: []string{"delta < 0"}}, mx, true},
		{"negative int256 equality", hook.Filter{Chains: []uint64{1}, Events: []string{allTypesDecl}, Where: []string{"delta == -5"}}, mx, true},
		{"negative int32", hook.Filter{Chains: []uint64{1}, Events: []string{allTypesDecl}, Where: []string{"tiny <= -70000 and tiny > -70001"}}, mx, true},
		{"uint256 beyond 64 bits", hook.Filter{Chains: []uint64{1}, Events: []string{allTypesDecl}, Where: []string{"big >= 1000000000000000000000000000000"}}, mx, true},
		{"uint256 beyond 64 bits miss", hook.Filter{Chains: []uint64{1}, Events: []string{allTypesDecl}, Where: []string{"big > 1000000000000000000000000000000"}}, mx, false},
		{"bool ==", hook.Filter{Chains: []uint64{1}, Events: []string{allTypesDecl}, Where: []string{"ok == true"}}, mx, true},
		{"bool !=", hook.Filter{Chains: []uint64{1}, Events: []string{allTypesDecl}, Where: []string{"ok != true"}}, mx, false},
		{"bytes ==", hook.Filter{Chains: []uint64{1}, Events: []string{allTypesDecl}, Where: []string{"blob == 0xBEEF"}}, mx, true},
		{"bytes in", hook.Filter{Chains: []uint64{1}, Events: []string{allTypesDecl}, Where: []string{"blob in (0x00, 0xbeef)"}}, mx, true},
		{"bytes4 !=", hook.Filter{Chains: []uint64{1}, Events: []string{allTypesDecl}, Where: []string{"sel != 0xa9059cbb"}}, mx, false},
		{"string ==", hook.Filter{Chains: []uint64{1}, Events: []string{allTypesDecl}, Where: []string{`note == "hello world"`}}, mx, true},
		{"string in single quotes", hook.Filter{Chains: []uint64{1}, Events: []string{allTypesDecl}, Where: []string{`note in ('a', 'hello world')`}}, mx, true},
		{"string !=", hook.Filter{Chains: []uint64{1}, Events: []string{allTypesDecl}, Where: []string{`note != "hello world"`}}, mx, false},
		{"indexed string compares by hash", hook.Filter{Chains: []uint64{1}, Events: []string{allTypesDecl}, Where: []string{`tag == "gold"`}}, mx, true},
		{"indexed string miss", hook.Filter{Chains: []uint64{1}, Events: []string{allTypesDecl}, Where: []string{`tag == "silver"`}}, mx, false},
		{"indexed address", hook.Filter{Chains: []uint64{1}, Events: []string{allTypesDecl}, Where: []string{"who == " + alice}}, mx, true},

		{"and both true", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"value >= 1000 and to == " + bob}}, transfer, true},
		{"and one false", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"value >= 1000 && to == " + carol}}, transfer, false},
		{"or one true", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"value > 100000 or to == " + bob}}, transfer, true},
		{"or none true", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"value > 100000 || to == " + carol}}, transfer, false},
		{"parentheses change precedence", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"(value > 100000 or to == " + bob + ") and from == " + carol}}, transfer, false},
		{"precedence without parentheses", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"value > 100000 or to == " + bob + " and from == " + alice}}, transfer, true},
		{"not", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"not value < 1000"}}, transfer, true},
		{"several where are ANDed", hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"value >= 1000", "to == " + carol}}, transfer, false},
		{"conditions with topic0 only", hook.Filter{Chains: []uint64{1}, Topics: [][]string{{decode.TopicOf("Transfer(address,address,uint256)")}}, Where: []string{"value == 5000"}}, transfer, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Compile(tc.f)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			r, ok := m.Match(tc.ev, &Cache{})
			if ok != tc.match {
				t.Fatalf("match = %v, want %v (decode: %+v)", ok, tc.match, r)
			}
		})
	}
}

func TestUndecodableLogStillMatchesWithoutConditions(t *testing.T) {
	ev := erc20(1, tokenA, alice, bob, 1)
	ev.Log.Data = "0x12"
	m, err := Compile(hook.Filter{Chains: []uint64{1}, Addresses: []string{tokenA}})
	if err != nil {
		t.Fatal(err)
	}
	r, ok := m.Match(ev, nil)
	if !ok || r.DecodeErr == nil || r.Decoded != nil {
		t.Fatalf("want a match with a decode error, got ok=%v %+v", ok, r)
	}
	m2, _ := Compile(hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"value >= 0"}})
	if _, ok := m2.Match(ev, nil); ok {
		t.Fatal("conditions cannot hold on an undecodable log")
	}
	unknown := &hook.Event{Chain: hook.Chain{ID: 1}, Log: hook.Log{Address: tokenA, Topics: []string{"0x" + strings.Repeat("ee", 32)}}}
	r, ok = m.Match(unknown, nil)
	if !ok || !errors.Is(r.DecodeErr, decode.ErrUnknownEvent) {
		t.Fatalf("unknown event: ok=%v %+v", ok, r)
	}
}

func TestEndpointABIWinsOverBuiltins(t *testing.T) {
	abiJSON := `[{"type":"event","name":"Transfer","inputs":[{"name":"src","type":"address","indexed":true},{"name":"dst","type":"address","indexed":true},{"name":"wad","type":"uint256","indexed":false}]}]`
	m, err := Compile(hook.Filter{Chains: []uint64{1}, ABI: []byte(abiJSON), Events: []string{"Transfer"}, Where: []string{"wad == 5000"}})
	if err != nil {
		t.Fatal(err)
	}
	r, ok := m.Match(erc20(1, tokenA, alice, bob, 5000), nil)
	if !ok || r.Decoded.Args["dst"] != bob {
		t.Fatalf("ok=%v %+v", ok, r.Decoded)
	}
}

func TestValidationErrorsNameTheBadPart(t *testing.T) {
	tests := []struct {
		f    hook.Filter
		want string
	}{
		{hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer(address,address,uint256)"}, Where: []string{"value >= 1", "vaule >= 1000"}},
			`where[1]: unknown argument "vaule" of Transfer(address,address,uint256); known: from, to, value`},
		{hook.Filter{}, "chains: at least one chain id is required"},
		{hook.Filter{Chains: []uint64{1}, Addresses: []string{"0x12"}}, `addresses[0]: "0x12" is not a 0x address`},
		{hook.Filter{Chains: []uint64{1}, Topics: [][]string{nil, {"0xzz"}}}, `topics[1][0]: "0xzz" is not a 0x topic`},
		{hook.Filter{Chains: []uint64{1}, Events: []string{"Nope"}}, `events[0]: no event named "Nope"`},
		{hook.Filter{Chains: []uint64{1}, Events: []string{"event X(uint300 a)"}}, `events[0]:`},
		{hook.Filter{Chains: []uint64{1}, ABI: []byte(`{"x":1}`)}, `abi: parse ABI JSON`},
		{hook.Filter{Chains: []uint64{1}, Where: []string{"value > 1"}}, `where[0]: conditions need the event's argument names`},
		{hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"value >"}}, `where[0]: expected a value after value >`},
		{hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"value >= 1 and"}}, `where[0]: condition ends too early`},
		{hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"(value >= 1"}}, `where[0]: expected )`},
		{hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"to > 0x7a250d5630b4cf539739df2c5dacb4c659f2488d"}}, `where[0]: to >: ordering needs an integer argument`},
		{hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"to == 0x1234"}}, `where[0]: to == 0x1234: "0x1234" is not a 0x address`},
		{hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"value == -1"}}, `where[0]: value == -1: -1 is out of range for uint256`},
		{hook.Filter{Chains: []uint64{1}, Events: []string{allTypesDecl}, Where: []string{"small == 256"}}, `out of range for uint8`},
		{hook.Filter{Chains: []uint64{1}, Events: []string{allTypesDecl}, Where: []string{"note == hello"}}, `expected a value after note ==`},
		{hook.Filter{Chains: []uint64{1}, Events: []string{allTypesDecl}, Where: []string{"note == 5"}}, `quote the value`},
		{hook.Filter{Chains: []uint64{1}, Events: []string{allTypesDecl}, Where: []string{"sel == 0xa9"}}, `bytes4 needs 4`},
		{hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Topics: [][]string{{decode.TopicOf("Approval(address,address,uint256)")}}}, `topics[0]: no topic0 listed`},
	}
	for _, tc := range tests {
		_, err := Compile(tc.f)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Compile(%+v)\n error %v\n want  %s", tc.f, err, tc.want)
			continue
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Errorf("error is not filter.Errors: %T", err)
		}
	}
}

func BenchmarkMatchWithCondition(b *testing.B) {
	m, _ := Compile(hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer"}, Where: []string{"value >= 1000 and to == " + bob}})
	ev := erc20(1, tokenA, alice, bob, 5000)
	c := &Cache{}
	b.ReportAllocs()
	for b.Loop() {
		c.Reset()
		if _, ok := m.Match(ev, c); !ok {
			b.Fatal("no match")
		}
	}
}
