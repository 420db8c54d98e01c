package devnet

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

// Handler serves WebSocket JSON-RPC (GET with Upgrade: websocket), HTTP
// JSON-RPC (POST /, single and batch) and the control API under /control/.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/control/", n.serveControl)
	mux.HandleFunc("/", n.serveRPC)
	return mux
}

func (n *Node) serveRPC(w http.ResponseWriter, r *http.Request) {
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		n.serveWS(w, r)
		return
	}
	switch r.Method {
	case http.MethodPost:
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		w.WriteHeader(http.StatusOK)
		return
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxMessage+1))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > maxMessage {
		http.Error(w, "content length too large", http.StatusRequestEntityTooLarge)
		return
	}
	if !n.waitStall(r.Context().Done()) {
		return
	}
	resp, limited := n.handleMessage(body, nil)
	w.Header().Set("Content-Type", "application/json")
	if limited > 0 {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
	}
	if resp != nil {
		_, _ = w.Write(resp)
	}
}

// BlockInfo is a block as the control API reports it.
type BlockInfo struct {
	Number     uint64 `json:"number"`
	Hash       string `json:"hash"`
	ParentHash string `json:"parentHash"`
	Time       uint64 `json:"timestamp"`
	Logs       int    `json:"logs"`
}

func info(b Block) BlockInfo {
	return BlockInfo{Number: b.Number, Hash: b.Hash.Hex(), ParentHash: b.ParentHash.Hex(), Time: b.Time, Logs: len(b.Logs)}
}

func infos(bs []Block) []BlockInfo {
	out := make([]BlockInfo, len(bs))
	for i, b := range bs {
		out[i] = info(b)
	}
	return out
}

// serveControl is the fault-injection API:
//
//	POST /control/mine {"n":k}        POST /control/reorg {"depth":d}
//	POST /control/skip {"n":k}        POST /control/drop
//	POST /control/stall {"ms":n}      POST /control/malformed {"n":k}
//	POST /control/ratelimit {"n":k}   POST /control/emptylogs
//	POST /control/pause               POST /control/resume
//	GET  /control/head                GET  /control/stats
//	GET  /control/finality            POST /control/finality {"safe_depth":s,"finalized_depth":f}
//	POST /control/finality/stall      POST /control/finality/jump {"n":block} (default: the head)
//	POST /control/finality/resume
func (n *Node) serveControl(w http.ResponseWriter, r *http.Request) {
	action := strings.TrimPrefix(r.URL.Path, "/control/")
	if r.Method == http.MethodGet {
		switch action {
		case "head":
			writeJSON(w, http.StatusOK, info(n.Head()))
		case "stats":
			writeJSON(w, http.StatusOK, n.Stats())
		case "finality":
			writeJSON(w, http.StatusOK, n.Finality())
		default:
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown control " + action})
		}
		return
	}
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use POST"})
		return
	}
	var p struct {
		N              *int    `json:"n"`
		Depth          *int    `json:"depth"`
		MS             *int    `json:"ms"`
		SafeDepth      *uint64 `json:"safe_depth"`
		FinalizedDepth *uint64 `json:"finalized_depth"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &p); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid body: " + err.Error()})
			return
		}
	}
	get := func(v *int, def int) int {
		if v == nil {
			return def
		}
		return *v
	}
	switch action {
	case "mine":
		writeJSON(w, http.StatusOK, map[string]any{"blocks": infos(n.Mine(get(p.N, 1))), "head": info(n.Head())})
	case "reorg":
		old := n.Head()
		bs := n.Reorg(get(p.Depth, 1))
		writeJSON(w, http.StatusOK, map[string]any{"old_head": info(old), "blocks": infos(bs), "head": info(n.Head())})
	case "skip":
		n.SkipHeads(get(p.N, 3))
		writeJSON(w, http.StatusOK, map[string]any{"head": info(n.Head())})
	case "drop":
		n.DropConnections()
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
	case "stall":
		d := time.Duration(get(p.MS, 1000)) * time.Millisecond
		n.Stall(d)
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "until": time.Now().Add(d).Format(time.RFC3339Nano)})
	case "malformed":
		n.MalformedNext(get(p.N, 1))
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
	case "ratelimit":
		n.RateLimitNext(get(p.N, 1))
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
	case "emptylogs":
		n.EmptyLogsOnceNext()
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
	case "pause":
		n.Pause()
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "head": info(n.Head())})
	case "finality":
		var s, f uint64
		if p.SafeDepth != nil {
			s = *p.SafeDepth
		}
		if p.FinalizedDepth != nil {
			f = *p.FinalizedDepth
		}
		n.SetFinalityDepths(s, f)
		writeJSON(w, http.StatusOK, n.Finality())
	case "finality/stall":
		writeJSON(w, http.StatusOK, n.StallFinality())
	case "finality/jump":
		to := n.Head().Number
		if p.N != nil {
			if *p.N < 0 {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "n: must not be negative"})
				return
			}
			to = uint64(*p.N)
		}
		writeJSON(w, http.StatusOK, n.JumpFinality(to))
	case "finality/resume":
		writeJSON(w, http.StatusOK, n.ResumeFinality())
	case "resume":
		n.Resume()
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "head": info(n.Head())})
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown control " + action})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
