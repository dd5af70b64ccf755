package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// TestConnLimitPerSource: past the limit, a source's new connections are
// closed as they are accepted, and the count goes down as they close, so
// the source is served again.
func TestConnLimitPerSource(t *testing.T) {
	const limit = 3
	l := &connLimit{max: limit, open: map[netip.Addr]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
		ConnState:         l.track,
		ReadHeaderTimeout: 10 * time.Second,
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })

	dial := func() net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	get := func(c net.Conn) error {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	open := func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.open[netip.MustParseAddr("127.0.0.1")]
	}
	var held []net.Conn
	for range limit {
		c := dial()
		if err := get(c); err != nil {
			t.Fatalf("connection within the limit: %v", err)
		}
		held = append(held, c)
	}
	if err := get(dial()); err == nil {
		t.Fatalf("connection %d of one source was served, want it closed", limit+1)
	}
	clocktest.WaitFor(t, 10*time.Second, "the refused connection counted out", func() bool { return open() == limit })
	held[0].Close()
	clocktest.WaitFor(t, 10*time.Second, "a closed connection counted out", func() bool { return open() == limit-1 })
	if err := get(dial()); err != nil {
		t.Errorf("a new connection once one closed: %v", err)
	}
}
