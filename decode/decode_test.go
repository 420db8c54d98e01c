package decode

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ethhook/ethhook/hook"
)

// Real logs captured from chain data (eth_getTransactionReceipt output):
//   - ERC-20 Transfer and Uniswap V2 Swap: Ethereum mainnet block 15769241,
//     tx 0x20e7dda515f04ea6a787f68689e27bcadbba914184da5336204f3f36771f59f0, log 2 and 6;
//   - Uniswap V3 Swap: Ethereum mainnet block 15923415 (0xf2f8d7),
//     tx 0x4878fb96953eea6db8dee22787214b51fa875a2dbc9fef8984602c60f39f10b6, log 5;
//   - ERC-20 Approval: Ethereum mainnet USDT, block 0x129f4b9,
//     tx 0x21f6554c28453a01e7276c1db2fc1695bb512b170818bfa98fa8136433100616;
//   - ERC-721 Transfer: Ethereum mainnet block 18399996,
//     tx 0x060fa1d06bfed189d135345b5ebe26a3f4fc7ba8e4926f7d9db305d3ce220406, log 134;
//   - ERC-1155 TransferSingle/TransferBatch: Polygon mainnet ConditionalTokens
//     0x4d97dcd97ec945f40cf65f87097ace5ea0476045, block 87909517,
//     tx 0x03beb7ad6347d3d73cd47eb7b620869786f659e0f995f9ff4c70b43987da9da1, logs 976 and 973.
var realLogs = []struct {
	name    string
	log     hook.Log
	sig     string
	argsOut string // expected decoded args as JSON
}{
	{
		name: "ERC20Transfer",
		log: hook.Log{
			Address: "0x97be09f2523b39b835da9ea3857cfa1d3c660cbb",
			Topics: []string{
				"0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
				"0x0000000000000000000000009c0649d7325990d98375f7864ea167b5eadcd46a",
				"0x000000000000000000000000f848e97469538830b0b147152524184a255b9106",
			},
			Data: "0x00000000000000000000000000000000000000000000000332ca1b67940c0000",
		},
		sig:     "Transfer(address,address,uint256)",
		argsOut: `{"from":"0x9c0649d7325990d98375f7864ea167b5eadcd46a","to":"0xf848e97469538830b0b147152524184a255b9106","value":"59000000000000000000"}`,
	},
	{
		name: "ERC20Approval",
		log: hook.Log{
			Address: "0xdac17f958d2ee523a2206206994597c13d831ec7",
			Topics: []string{
				"0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925",
				"0x0000000000000000000000009a53bfba35269414f3b2d20b52ca01b15932c7b2",
				"0x00000000000000000000000039e5dbb9d2fead31234d7c647d6ce77d85826f76",
			},
			Data: "0x00000000000000000000000000000000000000000052b7d2dcc80cd2e4000000",
		},
		sig:     "Approval(address,address,uint256)",
		argsOut: `{"owner":"0x9a53bfba35269414f3b2d20b52ca01b15932c7b2","spender":"0x39e5dbb9d2fead31234d7c647d6ce77d85826f76","value":"100000000000000000000000000"}`,
	},
	{
		name: "ERC721Transfer",
		log: hook.Log{
			Address: "0x5f8f682a9dd9dc399acbdfcf3393aff680f1f22f",
			Topics: []string{
				"0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
				"0x00000000000000000000000033784523ff246db56dce26c7ad6836c84a7c7218",
				"0x000000000000000000000000cc99855481022fcc44037dc50b48e3d7415613ad",
				"0x00000000000000000000000000000000000000000000000000000000000005c7",
			},
			Data: "0x",
		},
		sig:     "Transfer(address,address,uint256)",
		argsOut: `{"from":"0x33784523ff246db56dce26c7ad6836c84a7c7218","to":"0xcc99855481022fcc44037dc50b48e3d7415613ad","tokenId":"1479"}`,
	},
	{
		name: "ERC1155TransferSingle",
		log: hook.Log{
			Address: "0x4d97dcd97ec945f40cf65f87097ace5ea0476045",
			Topics: []string{
				"0xc3d58168c5ae7397731d063d5bbf3d657854427343f4c083240f7aacaa2d0f62",
				"0x000000000000000000000000e111180000d2663c0091e4f400237545b87b996b",
				"0x000000000000000000000000e111180000d2663c0091e4f400237545b87b996b",
				"0x00000000000000000000000086a29f88fcc23ea2b0e01b4e186b043e26c873a8",
			},
			Data: "0x1be01ed2dbe761b31af76b05e195bbcb779f149f076710c4ea0ce184b453404a" +
				"0000000000000000000000000000000000000000000000000000000000631541",
		},
		sig:     "TransferSingle(address,address,address,uint256,uint256)",
		argsOut: `{"from":"0xe111180000d2663c0091e4f400237545b87b996b","id":"12608433391396331155306434267062131916555683778362796330808483570875643412554","operator":"0xe111180000d2663c0091e4f400237545b87b996b","to":"0x86a29f88fcc23ea2b0e01b4e186b043e26c873a8","value":"6493505"}`,
	},
	{
		name: "ERC1155TransferBatch",
		log: hook.Log{
			Address: "0x4d97dcd97ec945f40cf65f87097ace5ea0476045",
			Topics: []string{
				"0x4a39dc06d4c0dbc64b70af90fd698a233a518aa5d07e595d983b8c0526c8f7fb",
				"0x000000000000000000000000ada100874d00e3331d00f2007a9c336a65009718",
				"0x0000000000000000000000000000000000000000000000000000000000000000",
				"0x000000000000000000000000ada100874d00e3331d00f2007a9c336a65009718",
			},
			Data: "0x" +
				"0000000000000000000000000000000000000000000000000000000000000040" +
				"00000000000000000000000000000000000000000000000000000000000000a0" +
				"0000000000000000000000000000000000000000000000000000000000000002" +
				"1bc682dbcd847ec49bfd347ee51526cd4f8226b65f539867506d9d5ba79957c1" +
				"1be01ed2dbe761b31af76b05e195bbcb779f149f076710c4ea0ce184b453404a" +
				"0000000000000000000000000000000000000000000000000000000000000002" +
				"0000000000000000000000000000000000000000000000000000000000631541" +
				"0000000000000000000000000000000000000000000000000000000000631541",
		},
		sig:     "TransferBatch(address,address,address,uint256[],uint256[])",
		argsOut: `{"from":"0x0000000000000000000000000000000000000000","ids":["12563185783471240613395907789703187646629710430787815068142892089727251994561","12608433391396331155306434267062131916555683778362796330808483570875643412554"],"operator":"0xada100874d00e3331d00f2007a9c336a65009718","to":"0xada100874d00e3331d00f2007a9c336a65009718","values":["6493505","6493505"]}`,
	},
	{
		name: "UniswapV2Swap",
		log: hook.Log{
			Address: "0xf848e97469538830b0b147152524184a255b9106",
			Topics: []string{
				"0xd78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822",
				"0x0000000000000000000000007a250d5630b4cf539739df2c5dacb4c659f2488d",
				"0x0000000000000000000000009c0649d7325990d98375f7864ea167b5eadcd46a",
			},
			Data: "0x0000000000000000000000000000000000000000000000000000000000000000" +
				"00000000000000000000000000000000000000000000000332ca1b67940c0000" +
				"0000000000000000000000000000000000000000000000044b0a580cbdcfc0d9" +
				"0000000000000000000000000000000000000000000000000000000000000000",
		},
		sig:     "Swap(address,uint256,uint256,uint256,uint256,address)",
		argsOut: `{"amount0In":"0","amount0Out":"79194207409197269209","amount1In":"59000000000000000000","amount1Out":"0","sender":"0x7a250d5630b4cf539739df2c5dacb4c659f2488d","to":"0x9c0649d7325990d98375f7864ea167b5eadcd46a"}`,
	},
	{
		name: "UniswapV3Swap",
		log: hook.Log{
			Address: "0x11b815efb8f581194ae79006d24e0d814b7697f6",
			Topics: []string{
				"0xc42079f94a6350d7e6235f29174924f928cc2ac818eb64fed8004e115fbcca67",
				"0x00000000000000000000000038a868000000a600a300867c596d400d79970500",
				"0x000000000000000000000000703b120f15ab77b986a24c6f9262364d02f9432f",
			},
			Data: "0x00000000000000000000000000000000000000000000000007f0fe144fa826e0" +
				"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffcdc6b004" +
				"0000000000000000000000000000000000000000000283f36a13a504219c2a9c" +
				"000000000000000000000000000000000000000000000000159631ad74a3a0a6" +
				"fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffce597",
		},
		sig:     "Swap(address,address,int256,int256,uint160,uint128,int24)",
		argsOut: `{"amount0":"572236515865274080","amount1":"-842616828","liquidity":"1555485342359068838","recipient":"0x703b120f15ab77b986a24c6f9262364d02f9432f","sender":"0x38a868000000a600a300867c596d400d79970500","sqrtPriceX96":"3040971850929523033647772","tick":"-203369"}`,
	},
}

func TestBuiltinSetDecodesRealMainnetLogs(t *testing.T) {
	for _, tc := range realLogs {
		t.Run(tc.name, func(t *testing.T) {
			ev, d, err := Builtin().Decode(&tc.log)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if d.Signature != tc.sig || ev.Signature != tc.sig {
				t.Fatalf("signature %q, want %q", d.Signature, tc.sig)
			}
			if TopicOf(tc.sig) != tc.log.Topics[0] {
				t.Fatalf("topic of %s is %s, log has %s", tc.sig, TopicOf(tc.sig), tc.log.Topics[0])
			}
			got := d.MarshalArgs()
			var a, b any
			_ = json.Unmarshal([]byte(got), &a)
			_ = json.Unmarshal([]byte(tc.argsOut), &b)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("args\n got %s\nwant %s", got, tc.argsOut)
			}
		})
	}
}

func TestCustomABIDecodesAndNamesArguments(t *testing.T) {
	abiJSON := `[{"type":"event","name":"Swap","anonymous":false,"inputs":[
		{"name":"sender","type":"address","indexed":true},
		{"name":"amount0In","type":"uint256","indexed":false},
		{"name":"amount1In","type":"uint256","indexed":false},
		{"name":"amount0Out","type":"uint256","indexed":false},
		{"name":"amount1Out","type":"uint256","indexed":false},
		{"name":"to","type":"address","indexed":true}]},
		{"type":"function","name":"swap","inputs":[],"outputs":[]}]`
	evs, err := ParseABI([]byte(abiJSON))
	if err != nil || len(evs) != 1 {
		t.Fatalf("ParseABI: %v %d", err, len(evs))
	}
	l := realLogs[5].log
	d, err := evs[0].Decode(&l)
	if err != nil {
		t.Fatal(err)
	}
	if d.Args["amount0Out"] != "79194207409197269209" || d.Args["to"] != "0x9c0649d7325990d98375f7864ea167b5eadcd46a" {
		t.Fatalf("args %s", d.MarshalArgs())
	}
}

func TestHumanReadableDeclarationAndDynamicTypes(t *testing.T) {
	e, err := ParseEvent("event Note(address indexed who, string indexed tag, bytes data, string text, bool ok, int8 small, bytes4 sel)")
	if err != nil {
		t.Fatal(err)
	}
	if e.Signature != "Note(address,string,bytes,string,bool,int8,bytes4)" {
		t.Fatalf("signature %s", e.Signature)
	}
	// data: offsets for bytes and string, then bool, int8(-3), bytes4.
	data := "0x" +
		"00000000000000000000000000000000000000000000000000000000000000a0" + // bytes offset
		"00000000000000000000000000000000000000000000000000000000000000e0" + // string offset
		"0000000000000000000000000000000000000000000000000000000000000001" + // ok
		"fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffd" + // small = -3
		"a9059cbb00000000000000000000000000000000000000000000000000000000" + // sel
		"0000000000000000000000000000000000000000000000000000000000000002" + "beef000000000000000000000000000000000000000000000000000000000000" +
		"0000000000000000000000000000000000000000000000000000000000000002" + "6869000000000000000000000000000000000000000000000000000000000000"
	l := hook.Log{Topics: []string{e.Topic0,
		"0x000000000000000000000000" + strings.Repeat("ab", 20),
		"0x" + strings.Repeat("11", 32)}, Data: data}
	d, err := e.Decode(&l)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"data":"0xbeef","ok":true,"sel":"0xa9059cbb","small":"-3","tag":"0x1111111111111111111111111111111111111111111111111111111111111111","text":"hi","who":"0xabababababababababababababababababababab"}`
	if d.MarshalArgs() != want {
		t.Fatalf("got  %s\nwant %s", d.MarshalArgs(), want)
	}
}

func TestBareSignatureBorrowsBuiltinNamesOrGoesPositional(t *testing.T) {
	e, err := ParseEvent("Transfer(address,address,uint256)")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.Arg("value"); !ok || e.Positional {
		t.Fatalf("bare ERC-20 Transfer should take the built-in names: %v", e.ArgNames())
	}
	p, err := ParseEvent("Paid(address,uint256)")
	if err != nil || !p.Positional {
		t.Fatalf("ParseEvent: %v positional=%v", err, p != nil && p.Positional)
	}
	l := hook.Log{Topics: []string{p.Topic0, "0x000000000000000000000000" + strings.Repeat("cd", 20)},
		Data: "0x00000000000000000000000000000000000000000000000000000000000003e8"}
	d, err := p.Decode(&l)
	if err != nil {
		t.Fatal(err)
	}
	if d.MarshalArgs() != `{"arg0":"0xcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd","arg1":"1000"}` {
		t.Fatalf("args %s", d.MarshalArgs())
	}
}

func TestUndecodableLogsReportWhy(t *testing.T) {
	bad := realLogs[0].log
	bad.Data = "0x1234" // truncated value
	if _, _, err := Builtin().Decode(&bad); err == nil || !strings.Contains(err.Error(), "Transfer(address,address,uint256)") {
		t.Fatalf("want an error naming the event, got %v", err)
	}
	unknown := hook.Log{Topics: []string{"0x" + strings.Repeat("00", 32)}}
	if _, _, err := Builtin().Decode(&unknown); !errors.Is(err, ErrUnknownEvent) {
		t.Fatalf("want ErrUnknownEvent, got %v", err)
	}
	for _, decl := range []string{"Transfer", "event X(uint257 a)", "event X(address indexed a b c)", "X((uint256,address))", "event X(uint a, uint a)"} {
		if _, err := ParseEvent(decl); err == nil {
			t.Errorf("ParseEvent(%q) accepted", decl)
		}
	}
	if _, err := ParseABI([]byte(`{"not":"an array"}`)); err == nil {
		t.Error("ParseABI accepted an object")
	}
}
