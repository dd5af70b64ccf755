package email

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
)

const (
	testUser     = "outpost@example.com"
	testPassword = "hunter2-SMTP-pa55word"
)

// testCA is a self-signed certificate for 127.0.0.1, the server's, and
// its PEM, which a notifier trusts it through (ca_file, read by Load).
type testCA struct {
	server *tls.Config
	pem    []byte
}

func newTestCA(t testing.TB) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "outpost test smtp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{server: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// received is one mail the server accepted.
type received struct {
	From string
	To   []string
	Data []byte
	TLS  bool
	Mech string
}

// mailServer is a real SMTP server (go-smtp) on 127.0.0.1 that takes AUTH
// PLAIN and LOGIN only over TLS, and answers with reply at the stage it
// names ("mail", "rcpt", "data", "auth") when set.
type mailServer struct {
	addr string
	mu   sync.Mutex
	got  []received
	fail map[string]*smtp.SMTPError
}

type serverMode int

const (
	modeSTARTTLS serverMode = iota
	modeImplicit
	modePlain // no TLS at all, and AUTH allowed in clear
)

func startServer(t testing.TB, ca testCA, mode serverMode) *mailServer {
	t.Helper()
	ms := &mailServer{fail: map[string]*smtp.SMTPError{}}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{ms: ms, c: c}, nil }))
	s.Domain = "mx.test"
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	s.MaxMessageBytes = 1 << 20
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	switch mode {
	case modeSTARTTLS:
		s.TLSConfig = ca.server
	case modeImplicit:
		l = tls.NewListener(l, ca.server)
	case modePlain:
		s.AllowInsecureAuth = true
	}
	ms.addr = l.Addr().String()
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(l) }()
	t.Cleanup(func() { s.Close(); <-done })
	return ms
}

func (ms *mailServer) failAt(stage string, code int, msg string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.fail[stage] = &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0}, Message: msg}
}

func (ms *mailServer) failure(stage string) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if e := ms.fail[stage]; e != nil {
		return e
	}
	return nil
}

func (ms *mailServer) mails() []received {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]received(nil), ms.got...)
}

type session struct {
	ms   *mailServer
	c    *smtp.Conn
	mech string
	cur  received
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if err := s.ms.failure("auth"); err != nil {
			return err
		}
		if user != testUser || pass != testPassword {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		s.mech = mech
		return nil
	}
	if mech == sasl.Login {
		return &loginServer{check: check}, nil
	}
	return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
}

// loginServer is the server side of AUTH LOGIN, which go-sasl lacks.
type loginServer struct {
	user  string
	step  int
	check func(user, pass string) error
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step++; {
	case l.step == 1 && resp == nil:
		l.step = 0
		return []byte("Username:"), false, nil
	case l.step == 1:
		l.user = string(resp)
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.mech == "" {
		return smtp.ErrAuthRequired
	}
	if err := s.ms.failure("mail"); err != nil {
		return err
	}
	_, isTLS := s.c.TLSConnectionState()
	s.cur = received{From: from, TLS: isTLS, Mech: s.mech}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := s.ms.failure("rcpt"); err != nil {
		return err
	}
	if err := s.ms.failure("rcpt " + to); err != nil {
		return err
	}
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := s.ms.failure("data"); err != nil {
		return err
	}
	s.cur.Data = b
	s.ms.mu.Lock()
	s.ms.got = append(s.ms.got, s.cur)
	s.ms.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.cur = received{} }
func (s *session) Logout() error { return nil }

func config(addr string, ca []byte) *checks.EmailNotifier {
	return &checks.EmailNotifier{Smarthost: addr, TLS: checks.EmailSTARTTLS, CAPEM: ca, Username: testUser, Password: checks.NewSecret(testPassword),
		Auth: checks.EmailAuthPlain, From: "outpost@example.com", To: []string{"oncall@example.com", "sre@example.org"}}
}

func newNotifier(t testing.TB, cfg *checks.EmailNotifier, timeout time.Duration) *Notifier {
	t.Helper()
	n, err := New(cfg, notify.Options{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// parsed is a received mail, read back as a client would.
type parsed struct {
	Header      mail.Header
	Plain, HTML string
}

func parse(t testing.TB, data []byte) parsed {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a mail: %v\n%s", err, data)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q: %v", m.Header.Get("Content-Type"), err)
	}
	p := parsed{Header: m.Header}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(part) // quoted-printable is decoded by NextPart
		if err != nil {
			t.Fatal(err)
		}
		switch ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type")); ct {
		case "text/plain":
			p.Plain = string(body)
		case "text/html":
			p.HTML = string(body)
		default:
			t.Errorf("unexpected part %q", ct)
		}
	}
	if p.Plain == "" || p.HTML == "" {
		t.Fatalf("want a text and an HTML part: %+v", p)
	}
	return p
}

func subjectOf(t testing.TB, h mail.Header) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestEmailSTARTTLSThreaded: a trigger and its resolve go out over
// STARTTLS with AUTH PLAIN to both recipients, as text and escaped HTML,
// the resolve in the trigger's thread.
func TestEmailSTARTTLSThreaded(t *testing.T) {
	ca := newTestCA(t)
	srv := startServer(t, ca, modeSTARTTLS)
	nf := newNotifier(t, config(srv.addr, ca.pem), 10*time.Second)
	down := notifytest.PageDown("outpost-0123456789abcdef")
	down.Summary = "web-home <DOWN> & out in 2 of 3 regions"
	down.Details = map[string]string{"state": "DOWN"}
	down.Runbook = "https://runbooks.example.com/web-home"
	for _, n := range []notify.Notification{down, notifytest.ResolveOf(down)} {
		if retry, err := nf.Notify(context.Background(), n); err != nil {
			t.Fatalf("%s: Notify = (%v, %v)", n.Action, retry, err)
		}
	}
	got := srv.mails()
	if len(got) != 2 {
		t.Fatalf("server got %d mails, want 2", len(got))
	}
	for _, m := range got {
		if !m.TLS || m.Mech != sasl.Plain || m.From != "outpost@example.com" || strings.Join(m.To, ",") != "oncall@example.com,sre@example.org" {
			t.Errorf("envelope %+v, want TLS, PLAIN, both recipients", m)
		}
		if bytes.Contains(m.Data, []byte(testPassword)) {
			t.Error("the mail holds the password")
		}
	}
	trig, res := parse(t, got[0].Data), parse(t, got[1].Data)
	if s := subjectOf(t, trig.Header); s != "[CRITICAL] web-home DOWN: web-home <DOWN> & out in 2 of 3 regions" {
		t.Errorf("trigger subject %q", s)
	}
	if s := subjectOf(t, res.Header); !strings.HasPrefix(s, "[RESOLVED] web-home OK: web-home down resolved") {
		t.Errorf("resolve subject %q", s)
	}
	thread := nf.threadID(down.Key)
	tid, rid := trig.Header.Get("Message-ID"), res.Header.Get("Message-ID")
	if tid == "" || rid == "" || tid == rid || !strings.HasSuffix(tid, "@example.com>") {
		t.Errorf("Message-IDs %q and %q: want two distinct ids @example.com", tid, rid)
	}
	for _, h := range []mail.Header{trig.Header, res.Header} {
		if h.Get("In-Reply-To") != thread || h.Get("References") != thread {
			t.Errorf("In-Reply-To %q References %q, want the thread %q", h.Get("In-Reply-To"), h.Get("References"), thread)
		}
	}
	// Deterministic: another notifier (another evaluator, a restart)
	// threads the same key the same way and names the same mail alike.
	other := newNotifier(t, config(srv.addr, ca.pem), time.Second)
	if other.threadID(down.Key) != thread || other.messageID(down) != tid {
		t.Error("thread or Message-ID not deterministic")
	}
	if to := trig.Header.Get("To"); to != "oncall@example.com, sre@example.org" {
		t.Errorf("To %q", to)
	}
	for _, want := range []string{"us-east: FAILING: status 503, want 200", "eu-west: FAILING: connect: connection refused", "Status page: " + down.Link, "Runbook: " + down.Runbook, "Check:    web-home", "GET https://www.example.com/"} {
		if !strings.Contains(trig.Plain, want) {
			t.Errorf("text lacks %q:\n%s", want, trig.Plain)
		}
	}
	if !strings.Contains(trig.HTML, "web-home &lt;DOWN&gt; &amp; out") || strings.Contains(trig.HTML, "<DOWN>") {
		t.Errorf("HTML does not escape the summary:\n%s", trig.HTML)
	}
	if !strings.Contains(trig.HTML, `<a href="`+down.Link+`">`) {
		t.Errorf("HTML lacks the status page link:\n%s", trig.HTML)
	}
}

// TestEmailImplicitTLSLogin: implicit TLS (port 465 style) with AUTH LOGIN.
func TestEmailImplicitTLSLogin(t *testing.T) {
	ca := newTestCA(t)
	srv := startServer(t, ca, modeImplicit)
	cfg := config(srv.addr, ca.pem)
	cfg.TLS, cfg.Auth = checks.EmailImplicitTLS, checks.EmailAuthLogin
	if _, err := newNotifier(t, cfg, 10*time.Second).Notify(context.Background(), notifytest.PageDown("k")); err != nil {
		t.Fatal(err)
	}
	if got := srv.mails(); len(got) != 1 || !got[0].TLS || got[0].Mech != sasl.Login {
		t.Fatalf("mails %+v, want one over TLS with LOGIN", got)
	}
}

// TestEmailPlainLoopback: tls: none, as to a local relay.
func TestEmailPlainLoopback(t *testing.T) {
	ca := newTestCA(t)
	srv := startServer(t, ca, modePlain)
	cfg := config(srv.addr, nil)
	cfg.TLS = checks.EmailNoTLS
	if _, err := newNotifier(t, cfg, 10*time.Second).Notify(context.Background(), notifytest.PageDown("k")); err != nil {
		t.Fatal(err)
	}
	if got := srv.mails(); len(got) != 1 || got[0].TLS {
		t.Fatalf("mails %+v, want one in clear", got)
	}
}

// TestEmailRetryClassification: a 4xx reply is worth another attempt, a
// 5xx one is not; a refused connection, a server that never answers and
// a certificate not trusted are worth another; the error names the reply.
func TestEmailRetryClassification(t *testing.T) {
	ca := newTestCA(t)
	for _, tc := range []struct {
		stage string
		code  int
		retry bool
	}{
		{"mail", 421, true}, {"mail", 451, true}, {"rcpt", 450, true}, {"rcpt", 452, true}, {"data", 451, true},
		{"mail", 550, false}, {"rcpt", 550, false}, {"rcpt", 553, false}, {"data", 554, false}, {"auth", 535, false}, {"auth", 454, true},
	} {
		t.Run(tc.stage+"-"+strconv.Itoa(tc.code), func(t *testing.T) {
			srv := startServer(t, ca, modeSTARTTLS)
			srv.failAt(tc.stage, tc.code, "scripted refusal")
			retry, err := newNotifier(t, config(srv.addr, ca.pem), 10*time.Second).Notify(context.Background(), notifytest.PageDown("k"))
			var de *notify.DeliveryError
			if err == nil || retry != tc.retry || !errors.As(err, &de) || de.StatusCode != tc.code || !strings.Contains(err.Error(), "scripted refusal") {
				t.Fatalf("Notify = (%v, %v), want retry=%v and a DeliveryError with %d", retry, err, tc.retry, tc.code)
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		retry, err := newNotifier(t, config(notifytest.ClosedAddr(t), ca.pem), 10*time.Second).Notify(context.Background(), notifytest.PageDown("k"))
		if err == nil || !retry {
			t.Fatalf("Notify = (%v, %v), want a retryable error", retry, err)
		}
	})
	t.Run("server never greets", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				t.Cleanup(func() { c.Close() })
			}
		}()
		retry, err := newNotifier(t, config(l.Addr().String(), ca.pem), 200*time.Millisecond).Notify(context.Background(), notifytest.PageDown("k"))
		if err == nil || !retry || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Notify = (%v, %v), want a retryable deadline error", retry, err)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		srv := startServer(t, ca, modeSTARTTLS)
		retry, err := newNotifier(t, config(srv.addr, nil), 10*time.Second).Notify(context.Background(), notifytest.PageDown("k"))
		if err == nil || !retry || !strings.Contains(err.Error(), "certificate") || len(srv.mails()) != 0 {
			t.Fatalf("Notify = (%v, %v), want a certificate error and no mail", retry, err)
		}
	})
	t.Run("no STARTTLS offered", func(t *testing.T) {
		srv := startServer(t, ca, modePlain)
		retry, err := newNotifier(t, config(srv.addr, ca.pem), 10*time.Second).Notify(context.Background(), notifytest.PageDown("k"))
		if err == nil || !strings.Contains(err.Error(), "STARTTLS") || len(srv.mails()) != 0 {
			t.Fatalf("Notify = (%v, %v), want a STARTTLS error and no mail (no password in clear)", retry, err)
		}
	})
}

// TestEmailLeaksNoSecret: a server that echoes the password in its
// refusal, and a redactor of the configuration's other secrets: neither
// reaches the error.
func TestEmailLeaksNoSecret(t *testing.T) {
	ca := newTestCA(t)
	srv := startServer(t, ca, modeSTARTTLS)
	srv.failAt("auth", 535, "no such user/password pair outpost@example.com/"+testPassword)
	nf := newNotifier(t, config(srv.addr, ca.pem), 10*time.Second)
	retry, err := notifytest.AssertNotifyLeaksNoSecret(t, nf, notifytest.PageDown("k"), testPassword)
	if err == nil || retry {
		t.Fatalf("Notify = (%v, %v), want a final refusal", retry, err)
	}
	srv.mu.Lock()
	delete(srv.fail, "auth")
	srv.fail["data"] = &smtp.SMTPError{Code: 554, Message: "content rejected: " + testPassword}
	srv.mu.Unlock()
	if _, err := notifytest.AssertNotifyLeaksNoSecret(t, nf, notifytest.PageDown("k"), testPassword); err == nil {
		t.Fatal("want a refusal")
	}
}

// TestEmailReminder: a reminder says so in its subject, has a Message-ID
// of its own and stays in the incident's thread.
func TestEmailReminder(t *testing.T) {
	nf := newNotifier(t, config("127.0.0.1:1", nil), time.Second)
	down := notifytest.PageDown("outpost-0123456789abcdef")
	down.Details = map[string]string{"state": "DOWN"}
	rem := down
	rem.Details = map[string]string{"state": "DOWN", notify.DetailReminder: "true"}
	rem.Time = down.Time.Add(time.Hour)
	if s := subject(rem); !strings.HasPrefix(s, "Reminder: [CRITICAL] web-home DOWN: ") {
		t.Errorf("subject %q", s)
	}
	if nf.messageID(rem) == nf.messageID(down) {
		t.Error("the reminder reuses the trigger's Message-ID")
	}
	msg, err := nf.message(rem)
	if err != nil {
		t.Fatal(err)
	}
	if p := parse(t, msg); p.Header.Get("References") != nf.threadID(down.Key) {
		t.Errorf("References %q", p.Header.Get("References"))
	}
}

// TestEmailOneRecipientRefused: a recipient the server refuses for good
// does not cost the others the page; the refusal is reported, final (a
// retry would mail the others twice). A recipient refused for now makes
// the whole mail wait for another attempt.
func TestEmailOneRecipientRefused(t *testing.T) {
	ca := newTestCA(t)
	srv := startServer(t, ca, modeSTARTTLS)
	srv.failAt("rcpt sre@example.org", 550, "no such user")
	nf := newNotifier(t, config(srv.addr, ca.pem), 10*time.Second)
	retry, err := nf.Notify(context.Background(), notifytest.PageDown("k"))
	if err == nil || retry || !strings.Contains(err.Error(), "delivered to 1 of 2 recipients; refused sre@example.org: smtp 550 5.0.0: no such user") {
		t.Errorf("Notify = (%v, %v), want a final error naming the refused recipient", retry, err)
	}
	if got := srv.mails(); len(got) != 1 || strings.Join(got[0].To, ",") != "oncall@example.com" {
		t.Fatalf("mails %+v, want one to oncall@example.com", got)
	}

	srv.failAt("rcpt sre@example.org", 452, "mailbox full, try later")
	if retry, err := nf.Notify(context.Background(), notifytest.PageDown("k")); err == nil || !retry {
		t.Errorf("Notify = (%v, %v), want a retryable error", retry, err)
	}
	if got := len(srv.mails()); got != 1 {
		t.Errorf("%d mails, want no new one while a recipient waits", got)
	}
}
