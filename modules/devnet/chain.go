package devnet

import (
	"encoding/binary"
	"math/big"
	"math/rand/v2"
	"strconv"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// Event signatures the devnet emits.
const (
	SigTransfer = "Transfer(address,address,uint256)"
	SigApproval = "Approval(address,address,uint256)"
	SigSwap     = "Swap(address,uint256,uint256,uint256,uint256,address)"
)

// Topic0 of each event the devnet emits.
var (
	TopicTransfer = crypto.Keccak256Hash([]byte(SigTransfer))
	TopicApproval = crypto.Keccak256Hash([]byte(SigApproval))
	TopicSwap     = crypto.Keccak256Hash([]byte(SigSwap))
)

const genesisTime = 1_700_000_000

var (
	uint256Args  abi.Arguments // Transfer/Approval data: value
	swapDataArgs abi.Arguments // Swap data: amount0In, amount1In, amount0Out, amount1Out
	coinbase     = common.HexToAddress("0x00000000000000000000000000000000000c0ffe")
)

func init() {
	u256, err := abi.NewType("uint256", "", nil)
	if err != nil {
		panic(err)
	}
	uint256Args = abi.Arguments{{Name: "value", Type: u256}}
	swapDataArgs = abi.Arguments{
		{Name: "amount0In", Type: u256}, {Name: "amount1In", Type: u256},
		{Name: "amount0Out", Type: u256}, {Name: "amount1Out", Type: u256},
	}
}

// world is the fixed cast of contracts and accounts derived from the seed.
type world struct {
	seed    int64
	tokens  []common.Address // ERC-20 contracts (Transfer, Approval)
	pairs   []common.Address // Uniswap-V2-style pairs (Swap)
	users   []common.Address
	routers []common.Address
}

func newWorld(seed int64) *world {
	w := &world{seed: seed}
	derive := func(kind string, i int) common.Address {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(seed))
		h := crypto.Keccak256([]byte("ethhook-devnet"), []byte(kind), b[:], []byte(strconv.Itoa(i)))
		return common.BytesToAddress(h[12:])
	}
	for i := 0; i < 4; i++ {
		w.tokens = append(w.tokens, derive("token", i))
	}
	for i := 0; i < 2; i++ {
		w.pairs = append(w.pairs, derive("pair", i))
	}
	for i := 0; i < 2; i++ {
		w.routers = append(w.routers, derive("router", i))
	}
	for i := 0; i < 64; i++ {
		w.users = append(w.users, derive("user", i))
	}
	return w
}

// Contracts returns every contract address that emits logs on this devnet
// (tokens first, then pairs).
func (w *world) contracts() []common.Address {
	return append(append([]common.Address{}, w.tokens...), w.pairs...)
}

// block is a Block plus everything precomputed to serve it cheaply.
type block struct {
	Number     uint64
	Hash       common.Hash
	ParentHash common.Hash
	Time       uint64
	branch     uint64
	compact    bool // only the fields above are kept (body is nil); rebuild with Node.full
	*body
}

// body is what a whole block holds beyond what identifies it. Compacted
// blocks drop it: a stub is kept for every block ever mined, so it must be
// small (about 100 bytes instead of the 600 a block with an empty body takes).
type body struct {
	Bloom     types.Bloom
	TxHashes  []common.Hash
	Logs      []types.Log // BlockHash, BlockNumber, TxHash, TxIndex, Index, BlockTimestamp set
	gasUsed   uint64
	mixHash   common.Hash
	header    []byte // header JSON object, as sent in newHeads
	logsJSON  []byte // every log as JSON (removed:false), comma separated, no brackets
	logEnds   []int  // end offset of log i inside logsJSON
	txFrom    []common.Address
	txTo      []common.Address
	sizeBytes uint64
}

// public is b as the package's API shows it; b must be whole.
func (b *block) public() Block {
	return Block{Number: b.Number, Hash: b.Hash, ParentHash: b.ParentHash, Time: b.Time,
		Bloom: b.Bloom, TxHashes: b.TxHashes, Logs: b.Logs}
}

// logJSON returns the JSON of log i (removed:false).
func (b *block) logJSON(i int) []byte {
	start := 0
	if i > 0 {
		start = b.logEnds[i-1] + 1 // skip comma
	}
	return b.logsJSON[start:b.logEnds[i]]
}

func addrTopic(a common.Address) common.Hash { return common.BytesToHash(a.Bytes()) }

func randAmount(r *rand.Rand) *big.Int {
	// 1 .. ~1e24 spread over magnitudes, like token amounts with 18 decimals.
	v := new(big.Int).SetUint64(r.Uint64N(1_000_000) + 1)
	exp := r.IntN(19)
	return v.Mul(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil))
}

// buildBlock deterministically builds block `number` on top of parent for
// the given branch nonce.
func (n *Node) buildBlock(parent *block, number, branch uint64) *block {
	w := n.world
	r := rand.New(rand.NewPCG(uint64(w.seed)^0x9e3779b97f4a7c15, number*0x100000001b3^branch*0xc2b2ae3d27d4eb4f))
	count := 0
	if number > 0 {
		if n.cfg.FixedLogs {
			count = n.cfg.LogsPerBlock
		} else if n.cfg.LogsPerBlock > 0 {
			count = r.IntN(2*n.cfg.LogsPerBlock + 1)
		}
	}
	b := &block{branch: branch, body: &body{}}
	b.Number = number
	if parent != nil {
		b.ParentHash = parent.Hash
	}
	b.Time = genesisTime + number*n.secsPerBlock
	var seedBytes [8]byte
	binary.BigEndian.PutUint64(seedBytes[:], uint64(w.seed))
	var numBytes [16]byte
	binary.BigEndian.PutUint64(numBytes[:8], number)
	binary.BigEndian.PutUint64(numBytes[8:], branch)

	// Transactions of 1..3 logs each.
	logs := make([]types.Log, 0, count)
	txIndex := uint(0)
	for len(logs) < count {
		per := 1 + r.IntN(3)
		if rest := count - len(logs); per > rest {
			per = rest
		}
		var ti [8]byte
		binary.BigEndian.PutUint64(ti[:], uint64(txIndex))
		txHash := crypto.Keccak256Hash([]byte("tx"), seedBytes[:], numBytes[:], ti[:])
		from := w.users[r.IntN(len(w.users))]
		var to common.Address
		for j := 0; j < per; j++ {
			var lg types.Log
			switch k := r.IntN(10); {
			case k < 6: // Transfer
				tok := w.tokens[r.IntN(len(w.tokens))]
				src, dst := from, w.users[r.IntN(len(w.users))]
				if j > 0 {
					src = w.users[r.IntN(len(w.users))]
				}
				data, _ := uint256Args.Pack(randAmount(r))
				lg = types.Log{Address: tok, Topics: []common.Hash{TopicTransfer, addrTopic(src), addrTopic(dst)}, Data: data}
				if j == 0 {
					to = tok
				}
			case k < 8: // Approval
				tok := w.tokens[r.IntN(len(w.tokens))]
				spender := w.routers[r.IntN(len(w.routers))]
				data, _ := uint256Args.Pack(randAmount(r))
				lg = types.Log{Address: tok, Topics: []common.Hash{TopicApproval, addrTopic(from), addrTopic(spender)}, Data: data}
				if j == 0 {
					to = tok
				}
			default: // Swap
				pair := w.pairs[r.IntN(len(w.pairs))]
				router := w.routers[r.IntN(len(w.routers))]
				zero := new(big.Int)
				var data []byte
				if r.IntN(2) == 0 {
					data, _ = swapDataArgs.Pack(randAmount(r), zero, zero, randAmount(r))
				} else {
					data, _ = swapDataArgs.Pack(zero, randAmount(r), randAmount(r), zero)
				}
				lg = types.Log{Address: pair, Topics: []common.Hash{TopicSwap, addrTopic(router), addrTopic(from)}, Data: data}
				if j == 0 {
					to = router
				}
			}
			lg.BlockNumber = number
			lg.TxHash = txHash
			lg.TxIndex = txIndex
			lg.BlockTimestamp = b.Time
			lg.Index = uint(len(logs))
			logs = append(logs, lg)
		}
		b.TxHashes = append(b.TxHashes, txHash)
		b.txFrom = append(b.txFrom, from)
		b.txTo = append(b.txTo, to)
		b.gasUsed += 21_000 + uint64(per)*30_000
		txIndex++
	}

	// Bloom over every log address and topic. The values repeat a lot (a
	// small cast of contracts and accounts), so each is hashed once per block.
	var buf [6]byte
	seenAddr := make(map[common.Address]struct{}, 8)
	seenTopic := make(map[common.Hash]struct{}, 80)
	for i := range logs {
		if _, ok := seenAddr[logs[i].Address]; !ok {
			seenAddr[logs[i].Address] = struct{}{}
			b.Bloom.AddWithBuffer(logs[i].Address.Bytes(), &buf)
		}
		for _, t := range logs[i].Topics {
			if _, ok := seenTopic[t]; !ok {
				seenTopic[t] = struct{}{}
				b.Bloom.AddWithBuffer(t.Bytes(), &buf)
			}
		}
	}
	b.mixHash = common.Hash(crypto.Keccak256Hash([]byte("mix"), seedBytes[:], numBytes[:]))

	// Block hash: keccak of a deterministic header encoding.
	txRoot := types.EmptyTxsHash
	if len(b.TxHashes) > 0 {
		enc := make([]byte, 0, 32*len(b.TxHashes))
		for _, h := range b.TxHashes {
			enc = append(enc, h.Bytes()...)
		}
		txRoot = crypto.Keccak256Hash(enc)
	}
	var t8 [8]byte
	binary.BigEndian.PutUint64(t8[:], b.Time)
	b.Hash = crypto.Keccak256Hash([]byte("ethhook-devnet-header"), b.ParentHash.Bytes(), numBytes[:], t8[:], seedBytes[:], txRoot.Bytes(), b.Bloom.Bytes(), b.mixHash.Bytes())
	for i := range logs {
		logs[i].BlockHash = b.Hash
	}
	b.Logs = logs
	b.render(txRoot)
	return b
}

// render precomputes the header JSON and the logs JSON.
func (b *block) render(txRoot common.Hash) {
	receiptsRoot := types.EmptyReceiptsHash
	if len(b.TxHashes) > 0 {
		receiptsRoot = crypto.Keccak256Hash([]byte("receipts"), txRoot.Bytes())
	}
	stateRoot := crypto.Keccak256Hash([]byte("state"), b.Hash.Bytes())
	beaconRoot := crypto.Keccak256Hash([]byte("beacon"), b.ParentHash.Bytes())
	h := make([]byte, 0, 1400)
	h = append(h, `{"parentHash":"`...)
	h = appendHash(h, b.ParentHash)
	h = append(h, `","sha3Uncles":"`...)
	h = appendHash(h, types.EmptyUncleHash)
	h = append(h, `","miner":"`...)
	h = appendHex(h, coinbase.Bytes())
	h = append(h, `","stateRoot":"`...)
	h = appendHash(h, stateRoot)
	h = append(h, `","transactionsRoot":"`...)
	h = appendHash(h, txRoot)
	h = append(h, `","receiptsRoot":"`...)
	h = appendHash(h, receiptsRoot)
	h = append(h, `","logsBloom":"`...)
	h = appendHex(h, b.Bloom.Bytes())
	h = append(h, `","difficulty":"0x0","number":"`...)
	h = appendQuantity(h, b.Number)
	h = append(h, `","gasLimit":"0x1c9c380","gasUsed":"`...)
	h = appendQuantity(h, b.gasUsed)
	h = append(h, `","timestamp":"`...)
	h = appendQuantity(h, b.Time)
	h = append(h, `","extraData":"0x","mixHash":"`...)
	h = appendHash(h, b.mixHash)
	h = append(h, `","nonce":"0x0000000000000000","baseFeePerGas":"0x3b9aca00","withdrawalsRoot":"`...)
	h = appendHash(h, types.EmptyWithdrawalsHash)
	h = append(h, `","blobGasUsed":"0x0","excessBlobGas":"0x0","parentBeaconBlockRoot":"`...)
	h = appendHash(h, beaconRoot)
	h = append(h, `","requestsHash":"`...)
	h = appendHash(h, types.EmptyRequestsHash)
	h = append(h, `","hash":"`...)
	h = appendHash(h, b.Hash)
	h = append(h, `"}`...)
	b.header = h

	if len(b.Logs) > 0 {
		lj := make([]byte, 0, len(b.Logs)*620)
		b.logEnds = make([]int, len(b.Logs))
		for i := range b.Logs {
			if i > 0 {
				lj = append(lj, ',')
			}
			lj = appendLog(lj, &b.Logs[i], false)
			b.logEnds[i] = len(lj)
		}
		b.logsJSON = lj
	}
	b.sizeBytes = uint64(600 + 110*len(b.TxHashes))
}

// appendLog appends a log in geth's JSON field order.
func appendLog(dst []byte, l *types.Log, removed bool) []byte {
	dst = append(dst, `{"address":"`...)
	dst = appendHex(dst, l.Address.Bytes())
	dst = append(dst, `","topics":[`...)
	for i, t := range l.Topics {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = appendHash(dst, t)
		dst = append(dst, '"')
	}
	dst = append(dst, `],"data":"`...)
	dst = appendHex(dst, l.Data)
	dst = append(dst, `","blockNumber":"`...)
	dst = appendQuantity(dst, l.BlockNumber)
	dst = append(dst, `","transactionHash":"`...)
	dst = appendHash(dst, l.TxHash)
	dst = append(dst, `","transactionIndex":"`...)
	dst = appendQuantity(dst, uint64(l.TxIndex))
	dst = append(dst, `","blockHash":"`...)
	dst = appendHash(dst, l.BlockHash)
	dst = append(dst, `","blockTimestamp":"`...)
	dst = appendQuantity(dst, l.BlockTimestamp)
	dst = append(dst, `","logIndex":"`...)
	dst = appendQuantity(dst, uint64(l.Index))
	if removed {
		dst = append(dst, `","removed":true}`...)
	} else {
		dst = append(dst, `","removed":false}`...)
	}
	return dst
}

const hexdigits = "0123456789abcdef"

func appendHex(dst, b []byte) []byte {
	dst = append(dst, '0', 'x')
	for _, c := range b {
		dst = append(dst, hexdigits[c>>4], hexdigits[c&0xf])
	}
	return dst
}

func appendHash(dst []byte, h common.Hash) []byte { return appendHex(dst, h[:]) }

// appendQuantity appends an Ethereum JSON-RPC quantity (0x-prefixed, no
// leading zeros) without quotes.
func appendQuantity(dst []byte, v uint64) []byte {
	dst = append(dst, '0', 'x')
	return strconv.AppendUint(dst, v, 16)
}

func quantity(v uint64) string { return "0x" + strconv.FormatUint(v, 16) }
