package app

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ethhook/ethhook/config"
)

// startHTTP runs an httpServer with short timeouts whose handler reads the
// whole body, and returns its address.
func startHTTP(t *testing.T) string {
	t.Helper()
	limits := config.DefaultAdmin()
	limits.ReadHeaderTimeout, limits.ReadTimeout, limits.IdleTimeout = 200*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond
	h := &httpServer{name: "http", addr: "127.0.0.1:0", limits: limits, log: zap.NewNop(),
		handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for !h.Ready() {
		time.Sleep(5 * time.Millisecond)
	}
	return h.Addr()
}

// closedBy reports whether the server has closed conn: a read that ends
// in EOF or a reset (rather than the client's own deadline) means it did.
func closedBy(conn net.Conn) bool {
	for {
		_, err := conn.Read(make([]byte, 4096))
		switch {
		case err == nil:
			continue // a response; the close comes after it
		case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
			return true
		default:
			return false // the client's fail-safe deadline, or another error
		}
	}
}

// TestHTTPServerCutsOffATricklingBody sends the headers of a 1000-byte
// body and then one byte every 50 ms: sending it all would take 50 s, so
// the connection must be closed by the server's read timeout long before.
func TestHTTPServerCutsOffATricklingBody(t *testing.T) {
	conn, err := net.Dial("tcp", startHTTP(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan bool, 1)
	go func() {
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // fail-safe only
		closed <- closedBy(conn)
	}()
	for i := 0; i < 1000; i++ {
		select {
		case ok := <-closed:
			if !ok {
				t.Fatal("the connection was still open at the fail-safe deadline")
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
		if _, err := conn.Write([]byte("x")); err != nil {
			if ok := <-closed; !ok {
				t.Fatalf("write failed (%v) but the server did not close the connection", err)
			}
			return
		}
	}
	t.Fatal("the whole trickled body was accepted")
}

// TestHTTPServerClosesIdleKeepAliveConnections makes one request on a
// keep-alive connection and then stays silent: the server must close it.
func TestHTTPServerClosesIdleKeepAliveConnections(t *testing.T) {
	conn, err := net.Dial("tcp", startHTTP(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || res.StatusCode != http.StatusNoContent {
		t.Fatalf("response %v, %v", res, err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // fail-safe only
	if !closedBy(conn) {
		t.Fatal("the idle connection was still open at the fail-safe deadline")
	}
}
