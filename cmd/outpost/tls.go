package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
)

// TLS without a reverse proxy: an evaluator can serve HTTPS itself, and
// require agents to present a client certificate (mTLS); agents can trust a
// private CA for it and present their certificate. Certificates are read
// again on SIGHUP; a reload that fails keeps the ones in use.

// tlsFlags are the TLS flags of one command.
type tlsFlags struct {
	cert, key string // this process's certificate and key
	ca        string // server: the CA of client certificates; client: the CA of the evaluators
}

// addServerTLSFlags registers the evaluator's TLS flags.
func addServerTLSFlags(fs *flag.FlagSet) *tlsFlags {
	t := &tlsFlags{}
	fs.StringVar(&t.cert, "tls-cert", "", "serve HTTPS with this PEM certificate `file` (chain first); needs --tls-key. Re-read on SIGHUP")
	fs.StringVar(&t.key, "tls-key", "", "PEM private key `file` of --tls-cert")
	fs.StringVar(&t.ca, "tls-client-ca", "", "require agents and peers to present a client certificate signed by a CA in this PEM `file` (mTLS); /healthz, /metrics and the status page too. Re-read on SIGHUP")
	return t
}

// addClientTLSFlags registers an agent's TLS flags.
func addClientTLSFlags(fs *flag.FlagSet) *tlsFlags {
	t := &tlsFlags{}
	fs.StringVar(&t.ca, "tls-ca", "", "trust the evaluators' certificates if signed by a CA in this PEM `file` (instead of the system's CAs); read at start")
	fs.StringVar(&t.cert, "tls-cert", "", "present this PEM client certificate `file` to evaluators that require one (mTLS); needs --tls-key. Re-read on SIGHUP")
	fs.StringVar(&t.key, "tls-key", "", "PEM private key `file` of --tls-cert")
	return t
}

// check reports flags that go together but were given alone.
func (t *tlsFlags) check() error {
	if (t.cert == "") != (t.key == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	return nil
}

// tlsFiles holds what the flags name, loaded, and loads it again on
// reload. Its methods are safe for concurrent use.
type tlsFiles struct {
	flags *tlsFlags
	mu    sync.RWMutex
	cert  *tls.Certificate // nil without --tls-cert
	pool  *x509.CertPool   // nil without a CA flag
}

// loadTLS reads the files the flags name; nil, nil when they name none.
func loadTLS(t *tlsFlags) (*tlsFiles, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	if t.cert == "" && t.ca == "" {
		return nil, nil
	}
	f := &tlsFiles{flags: t}
	if err := f.reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// reload reads the files again; on an error the ones in use stay.
func (f *tlsFiles) reload() error {
	var cert *tls.Certificate
	if f.flags.cert != "" {
		c, err := tls.LoadX509KeyPair(f.flags.cert, f.flags.key)
		if err != nil {
			return fmt.Errorf("TLS certificate %s with key %s: %w", f.flags.cert, f.flags.key, err)
		}
		cert = &c
	}
	var pool *x509.CertPool
	if f.flags.ca != "" {
		pem, err := os.ReadFile(f.flags.ca)
		if err != nil {
			return fmt.Errorf("TLS CA file: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("TLS CA file %s: no PEM certificate in it", f.flags.ca)
		}
	}
	f.mu.Lock()
	f.cert, f.pool = cert, pool
	f.mu.Unlock()
	return nil
}

func (f *tlsFiles) current() (*tls.Certificate, *x509.CertPool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.cert, f.pool
}

// serverConfig is the evaluator's TLS configuration: the current
// certificate, and with --tls-client-ca, a client certificate required and
// verified against the current CA. TLS 1.2 at least.
func (f *tlsFiles) serverConfig() (*tls.Config, error) {
	if cert, _ := f.current(); cert == nil {
		return nil, errors.New("--tls-client-ca needs --tls-cert and --tls-key: mTLS is served over HTTPS")
	}
	base := &tls.Config{MinVersion: tls.VersionTLS12}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cert, pool := f.current()
		c := base.Clone()
		c.GetConfigForClient = nil
		c.Certificates = []tls.Certificate{*cert}
		if pool != nil {
			c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
		return c, nil
	}
	return base, nil
}

// clientConfig is an agent's TLS configuration towards evaluators: the
// current CA (the system's without --tls-ca) and the current client
// certificate, if any. Nil when no flag is set.
func (f *tlsFiles) clientConfig() *tls.Config {
	if f == nil {
		return nil
	}
	_, pool := f.current()
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert, _ := f.current(); cert != nil {
				return cert, nil
			}
			return &tls.Certificate{}, nil // none: the server decides
		},
	}
}

// tlsListener wraps ln in TLS with f's server configuration.
func tlsListener(ln net.Listener, f *tlsFiles) (net.Listener, error) {
	cfg, err := f.serverConfig()
	if err != nil {
		return nil, err
	}
	return tls.NewListener(ln, cfg), nil
}
