package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/outposthq/outpost/probes/exposition"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
)

// httpServer serves one handler on one listener, with timeouts on every
// connection, until it is shut down.
type httpServer struct {
	srv    *http.Server
	ln     net.Listener
	scheme string
	errc   chan error
}

func listenAndServe(addr string, h http.Handler) (*httpServer, error) {
	return listenAndServeTLS(addr, h, nil)
}

// listenAndServeTLS is listenAndServe over TLS when f is not nil (see
// tlsFiles.serverConfig).
func listenAndServeTLS(addr string, h http.Handler, f *tlsFiles) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	scheme := "http"
	if f != nil {
		if ln, err = tlsListener(ln, f); err != nil {
			return nil, err
		}
		scheme = "https"
	}
	conns := &connLimit{max: maxConnsPerSource, open: map[netip.Addr]int{}}
	s := &httpServer{
		srv: &http.Server{
			Handler:           h,
			ConnState:         conns.track,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			// Failed TLS handshakes and malformed requests from scanners
			// would otherwise write a line each to stderr, unbounded.
			ErrorLog: stdlog.New(io.Discard, "", 0),
		},
		ln:     ln,
		scheme: scheme,
		errc:   make(chan error, 1),
	}
	go func() { s.errc <- s.srv.Serve(ln) }()
	return s, nil
}

// maxConnsPerSource bounds the connections one address (an IPv6 /64)
// may hold open: past it, a new connection is closed as soon as it is
// accepted, before a byte of it is read. Handlers bound the requests in
// flight per source on their own (the evaluator's at 64).
const maxConnsPerSource = 256

// connLimit counts open connections per source address. Its map holds
// only sources with a connection open.
type connLimit struct {
	max  int
	mu   sync.Mutex
	open map[netip.Addr]int
}

// track is an http.Server ConnState hook: it counts a connection in when
// it is accepted, closing it if its source is over the limit, and out when
// it is closed or hijacked (every accepted connection ends in one of the
// two).
func (l *connLimit) track(c net.Conn, st http.ConnState) {
	src := connSource(c.RemoteAddr())
	switch st {
	case http.StateNew:
		l.mu.Lock()
		l.open[src]++
		over := l.open[src] > l.max
		l.mu.Unlock()
		if over {
			c.Close()
		}
	case http.StateClosed, http.StateHijacked:
		l.mu.Lock()
		if l.open[src] > 1 {
			l.open[src]--
		} else {
			delete(l.open, src)
		}
		l.mu.Unlock()
	}
}

// connSource is the source address a connection counts under: IPv6
// grouped by /64; anything else is one shared source.
func connSource(a net.Addr) netip.Addr {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return ip
}

// URL is the server's base URL.
func (s *httpServer) URL() string { return s.scheme + "://" + s.ln.Addr().String() }

// shutdown stops accepting and waits up to 5s for requests in flight.
func (s *httpServer) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
}

// newRegistry returns a registry with the Go runtime and process metrics.
// The per-check series register as exposition.Sources, which the handler
// of baseMux renders directly.
func newRegistry() *exposition.Registry {
	reg := exposition.NewRegistry()
	stampVersion()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("outpost"))
	return reg
}

// baseMux serves /metrics and /healthz, which every process has. /healthz
// answers 200 while the process serves; its body is "ok", or "degraded: "
// and what degraded (nil: none) reports, such as runs being skipped: a
// process overloaded by its targets would not be helped by a restart. It
// answers 503 "unhealthy: " and what unhealthy (nil: none) reports, such
// as an evaluator that cannot write its data dir: a fault of the process
// itself, which a load balancer or a peer should know about.
func baseMux(reg *exposition.Registry, degraded, unhealthy func() string) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", exposition.Handler(reg))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if unhealthy != nil {
			if problem := unhealthy(); problem != "" {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, "unhealthy: "+problem)
				return
			}
		}
		if degraded != nil {
			if problem := degraded(); problem != "" {
				fmt.Fprintln(w, "degraded: "+problem)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// defaultStateDir is where a component keeps its files when no directory
// is given: systemd's $STATE_DIRECTORY, else $XDG_STATE_HOME/outpost, else
// ~/.local/state/outpost.
func defaultStateDir(lookup func(string) (string, bool), sub string) string {
	if d, ok := lookup("STATE_DIRECTORY"); ok && d != "" {
		return filepath.Join(d, sub)
	}
	if d, ok := lookup("XDG_STATE_HOME"); ok && d != "" {
		return filepath.Join(d, "outpost", sub)
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "outpost", sub)
	}
	return filepath.Join("outpost-state", sub)
}

// untilStopped blocks until ctx ends or the server fails, calling reload on
// every SIGHUP.
func untilStopped(ctx context.Context, srv *httpServer, log *slog.Logger, reload func()) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			return nil
		case err := <-srv.errc:
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("http server: %w", err)
		case <-hup:
			reload()
		}
	}
}
