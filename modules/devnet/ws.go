package devnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

const (
	// maxMessage is the largest frame the devnet reads.
	maxMessage = 32 << 20
	// queueSize bounds each connection's outgoing queue; a subscriber that
	// falls this far behind is dropped, as geth does with slow clients.
	queueSize    = 20_000
	writeTimeout = 10 * time.Second
)

type subscription struct {
	id     string
	heads  bool
	filter *logFilter
	active bool // set once the eth_subscribe answer is queued
	prefix []byte
}

type wsConn struct {
	n    *Node
	c    *websocket.Conn
	out  chan []byte
	done chan struct{}
	once sync.Once

	subsMu  sync.Mutex
	subs    map[string]*subscription
	pending []*subscription
}

func (n *Node) serveWS(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		return
	}
	c.SetReadLimit(maxMessage)
	conn := &wsConn{
		n:    n,
		c:    c,
		out:  make(chan []byte, queueSize),
		done: make(chan struct{}),
		subs: make(map[string]*subscription),
	}
	n.connsMu.Lock()
	n.conns[conn] = struct{}{}
	n.connsMu.Unlock()
	n.count(func(s *Stats) { s.ConnectionsTotal++ })
	defer func() {
		n.connsMu.Lock()
		delete(n.conns, conn)
		n.connsMu.Unlock()
		conn.close(true) // the reader failed: the peer is gone or closed
	}()
	go conn.writeLoop()

	// Read fails once the connection is closed by either side, abruptly or
	// with a close handshake (which the library answers while reading).
	for {
		_, data, err := c.Read(context.Background())
		if err != nil {
			return
		}
		resp, _ := n.handleMessage(data, conn)
		if resp != nil {
			conn.send(resp)
		}
		conn.activatePending()
	}
}

// close ends the connection. abrupt closes the TCP connection without a
// close frame; otherwise it sends one and waits (bounded) for the answer.
func (c *wsConn) close(abrupt bool) {
	c.once.Do(func() {
		close(c.done)
		if abrupt {
			_ = c.c.CloseNow()
			return
		}
		_ = c.c.Close(websocket.StatusNormalClosure, "devnet shutting down")
	})
}

// send queues a frame without blocking; a full queue drops the connection.
func (c *wsConn) send(frame []byte) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	select {
	case c.out <- frame:
		return true
	default:
		c.n.count(func(s *Stats) { s.ConnectionsDropped++ })
		c.close(true)
		return false
	}
}

func (c *wsConn) writeLoop() {
	for {
		select {
		case <-c.done:
			return
		case f := <-c.out:
			if !c.n.waitStall(c.done) {
				return
			}
			f = c.n.maybeMalform(f)
			ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
			err := c.c.Write(ctx, websocket.MessageText, f)
			cancel()
			if err != nil {
				c.close(true)
				return
			}
		}
	}
}

func (c *wsConn) subscribe(kind string, f *logFilter) (string, *rpcError) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := "0x" + hex.EncodeToString(b[:])
	s := &subscription{id: id, heads: kind == "newHeads", filter: f}
	s.prefix = []byte(`{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"` + id + `","result":`)
	c.subsMu.Lock()
	c.subs[id] = s
	c.pending = append(c.pending, s)
	c.subsMu.Unlock()
	c.n.count(func(st *Stats) { st.SubscriptionsTotal++ })
	return id, nil
}

func (c *wsConn) unsubscribe(id string) bool {
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	if _, ok := c.subs[id]; !ok {
		return false
	}
	delete(c.subs, id)
	return true
}

// activatePending starts notifications for subscriptions whose answer is
// queued, so a notification never overtakes its eth_subscribe answer.
func (c *wsConn) activatePending() {
	c.subsMu.Lock()
	for _, s := range c.pending {
		s.active = true
	}
	c.pending = c.pending[:0]
	c.subsMu.Unlock()
}

func notification(prefix, result []byte) []byte {
	f := make([]byte, 0, len(prefix)+len(result)+2)
	f = append(f, prefix...)
	f = append(f, result...)
	return append(f, '}', '}')
}

type target struct {
	c    *wsConn
	subs []*subscription
}

func (n *Node) targets() []target {
	n.connsMu.Lock()
	defer n.connsMu.Unlock()
	out := make([]target, 0, len(n.conns))
	for c := range n.conns {
		c.subsMu.Lock()
		var subs []*subscription
		for _, s := range c.subs {
			if s.active {
				subs = append(subs, s)
			}
		}
		c.subsMu.Unlock()
		if len(subs) > 0 {
			out = append(out, target{c, subs})
		}
	}
	return out
}

// announce sends a new canonical block to subscribers: its logs to logs
// subscriptions, and its header to newHeads when head is true.
func (n *Node) announce(b *block, head bool) {
	var sent uint64
	for _, t := range n.targets() {
		for _, s := range t.subs {
			if s.heads {
				if head && t.c.send(notification(s.prefix, b.header)) {
					sent++
				}
				continue
			}
			for i := range b.Logs {
				l := &b.Logs[i]
				if !s.filter.match(l.Address, l.Topics) {
					continue
				}
				if !t.c.send(notification(s.prefix, b.logJSON(i))) {
					break
				}
				sent++
			}
		}
	}
	if sent > 0 {
		n.count(func(s *Stats) { s.Notifications += sent })
	}
}

// announceRemoved sends removed:true logs of orphaned blocks to logs
// subscriptions, newest block first and newest log first, as geth does.
func (n *Node) announceRemoved(old []*block) {
	var sent uint64
	var buf []byte
	for _, t := range n.targets() {
		for _, s := range t.subs {
			if s.heads {
				continue
			}
		blocks:
			for bi := len(old) - 1; bi >= 0; bi-- {
				b := n.full(old[bi])
				for i := len(b.Logs) - 1; i >= 0; i-- {
					l := &b.Logs[i]
					if !s.filter.match(l.Address, l.Topics) {
						continue
					}
					buf = appendLog(buf[:0], l, true)
					if !t.c.send(notification(s.prefix, buf)) {
						break blocks
					}
					sent++
				}
			}
		}
	}
	if sent > 0 {
		n.count(func(s *Stats) { s.Notifications += sent })
	}
}

// DropConnections closes every WebSocket connection abruptly, without a
// close frame.
func (n *Node) DropConnections() {
	conns := n.connections()
	for _, c := range conns {
		c.close(true)
	}
	n.count(func(s *Stats) { s.ConnectionsDropped += uint64(len(conns)) })
}

var (
	notifPrefix = []byte(`{"jsonrpc":"2.0","method":"eth_subscription"`)
	v2          = []byte(`"jsonrpc":"2.0"`)
	v1          = []byte(`"jsonrpc":"1.0"`)
)

// maybeMalform replaces f with a malformed frame while MalformedNext is armed.
func (n *Node) maybeMalform(f []byte) []byte {
	if !takeArmed(&n.malformed) {
		return f
	}
	n.count(func(s *Stats) { s.Malformed++ })
	switch n.malformSeq.Add(1) % 4 {
	case 1: // invalid JSON
		return []byte(`{"jsonrpc":"2.0","id":,"result":0xdeadbeef]`)
	case 2: // truncated JSON
		return append([]byte(nil), f[:len(f)/2]...)
	case 3: // wrong version
		return bytes.Replace(f, v2, v1, 1)
	default: // unknown id / unknown subscription
		if bytes.HasPrefix(f, notifPrefix) {
			return []byte(`{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x000000000000000000000000deadbeef","result":{}}}`)
		}
		return []byte(`{"jsonrpc":"2.0","id":987654321987,"result":"0x0"}`)
	}
}

// connections returns the open WebSocket connections, so they are closed
// without holding connsMu: a close with a close frame waits for the peer,
// and each connection's handler takes connsMu to remove itself.
func (n *Node) connections() []*wsConn {
	n.connsMu.Lock()
	defer n.connsMu.Unlock()
	conns := make([]*wsConn, 0, len(n.conns))
	for c := range n.conns {
		conns = append(conns, c)
	}
	return conns
}

// closeAll closes every WebSocket connection with a close frame.
func (n *Node) closeAll() {
	conns := n.connections()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.close(false)
		}()
	}
	wg.Wait()
}
