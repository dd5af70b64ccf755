// Package bustest runs a real NATS server with JetStream inside a test:
// the nats-server package itself, on 127.0.0.1 and a port the kernel
// picks, storing in a temporary directory. Tests only.
package bustest

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options shape the server. The zero value is an open server.
type Options struct {
	// Token, when set, is the one credential the server accepts.
	Token string
	// Users, when set, are the user/password pairs it accepts (with
	// Permissions by user, if any).
	Users []*server.User
	// StoreDir keeps JetStream's files; empty means a new t.TempDir().
	// Pass the same directory to a restarted server.
	StoreDir string
	// Port, when set, is the port to listen on (a restarted server takes
	// its predecessor's); 0 lets the kernel choose.
	Port int
}

// Server is a running NATS server.
type Server struct {
	*server.Server
	// URL is nats://127.0.0.1:PORT.
	URL      string
	Port     int
	StoreDir string
}

// Start runs a server until the test ends (or Shutdown).
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.StoreDir == "" {
		o.StoreDir = t.TempDir()
	}
	port := o.Port
	if port == 0 {
		port = freePort(t)
	}
	opts := &server.Options{
		ServerName:         "outpost-test",
		Host:               "127.0.0.1",
		Port:               port,
		JetStream:          true,
		StoreDir:           o.StoreDir,
		Authorization:      o.Token,
		Users:              o.Users,
		NoLog:              true,
		NoSigs:             true,
		MaxPayload:         2 << 20,
		JetStreamMaxMemory: 64 << 20,
		JetStreamMaxStore:  64 << 30, // a reservation limit, not space taken: the stream defaults to 1GiB and the buckets take more
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		t.Fatal("nats server not ready within 30s")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return &Server{Server: s, URL: "nats://127.0.0.1:" + strconv.Itoa(port), Port: port, StoreDir: o.StoreDir}
}

// Stop shuts the server down and waits until it has.
func (s *Server) Stop() {
	s.Shutdown()
	s.WaitForShutdown()
}

// freePort asks the kernel for a port nobody holds. Another process may
// take it before the server binds it; on this loopback-only test bed that
// race is rare and fails loudly.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
