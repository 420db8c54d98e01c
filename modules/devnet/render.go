package devnet

// The JSON of blocks, transactions and receipts as eth_getBlockBy* and
// eth_getTransactionReceipt answer them.

import "github.com/ethereum/go-ethereum/common"

func (n *Node) renderBlock(b *block, full bool) []byte {
	b = n.full(b)
	out := make([]byte, 0, len(b.header)+200+len(b.TxHashes)*70)
	out = append(out, b.header[:len(b.header)-1]...)
	out = append(out, `,"size":"`...)
	out = appendQuantity(out, b.sizeBytes)
	out = append(out, `","transactions":[`...)
	for i, h := range b.TxHashes {
		if i > 0 {
			out = append(out, ',')
		}
		if full {
			out = n.appendTx(out, b, i)
			continue
		}
		out = append(out, '"')
		out = appendHash(out, h)
		out = append(out, '"')
	}
	out = append(out, `],"uncles":[],"withdrawals":[]}`...)
	return out
}

func (n *Node) appendTx(out []byte, b *block, i int) []byte {
	out = append(out, `{"blockHash":"`...)
	out = appendHash(out, b.Hash)
	out = append(out, `","blockNumber":"`...)
	out = appendQuantity(out, b.Number)
	out = append(out, `","blockTimestamp":"`...)
	out = appendQuantity(out, b.Time)
	out = append(out, `","chainId":"`...)
	out = appendQuantity(out, n.cfg.ChainID)
	out = append(out, `","from":"`...)
	out = appendHex(out, b.txFrom[i].Bytes())
	out = append(out, `","gas":"0x30d40","gasPrice":"0x3b9aca00","maxFeePerGas":"0x77359400","maxPriorityFeePerGas":"0x0","hash":"`...)
	out = appendHash(out, b.TxHashes[i])
	out = append(out, `","input":"0x","nonce":"`...)
	out = appendQuantity(out, b.Number)
	out = append(out, `","to":"`...)
	out = appendHex(out, b.txTo[i].Bytes())
	out = append(out, `","transactionIndex":"`...)
	out = appendQuantity(out, uint64(i))
	out = append(out, `","value":"0x0","type":"0x2","accessList":[],"v":"0x1","r":"`...)
	out = appendHash(out, b.TxHashes[i])
	out = append(out, `","s":"`...)
	out = appendHash(out, b.mixHash)
	out = append(out, `","yParity":"0x1"}`...)
	return out
}

// receipt answers eth_getTransactionReceipt for canonical transactions.
func (n *Node) receipt(h common.Hash) []byte {
	n.mu.RLock()
	defer n.mu.RUnlock()
	for i := len(n.canon) - 1; i >= 0; i-- {
		b := n.canon[i]
		if b.compact {
			break // older blocks are compacted too; receipts only for retained ones
		}
		for ti, th := range b.TxHashes {
			if th != h {
				continue
			}
			out := []byte(`{"blockHash":"`)
			out = appendHash(out, b.Hash)
			out = append(out, `","blockNumber":"`...)
			out = appendQuantity(out, b.Number)
			out = append(out, `","contractAddress":null,"cumulativeGasUsed":"`...)
			out = appendQuantity(out, b.gasUsed)
			out = append(out, `","effectiveGasPrice":"0x3b9aca00","from":"`...)
			out = appendHex(out, b.txFrom[ti].Bytes())
			out = append(out, `","gasUsed":"0x5208","logs":[`...)
			first := true
			for li := range b.Logs {
				if b.Logs[li].TxIndex != uint(ti) {
					continue
				}
				if !first {
					out = append(out, ',')
				}
				first = false
				out = append(out, b.logJSON(li)...)
			}
			out = append(out, `],"logsBloom":"`...)
			out = appendHex(out, b.Bloom.Bytes())
			out = append(out, `","status":"0x1","to":"`...)
			out = appendHex(out, b.txTo[ti].Bytes())
			out = append(out, `","transactionHash":"`...)
			out = appendHash(out, th)
			out = append(out, `","transactionIndex":"`...)
			out = appendQuantity(out, uint64(ti))
			out = append(out, `","type":"0x2"}`...)
			return out
		}
	}
	return []byte("null")
}
