package outbox

import (
	"bytes"
	"io"
	"net"
	"net/mail"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/alerting/notify/receivers"
	"github.com/outposthq/outpost/checks"
)

// relay is a real SMTP server (go-smtp) on 127.0.0.1, without TLS or
// AUTH, as a local MTA: it keeps the mails it accepts.
type relay struct {
	addr  string
	mu    sync.Mutex
	mails [][]byte
}

func startRelay(t *testing.T) *relay {
	t.Helper()
	r := &relay{}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &relaySession{r: r}, nil }))
	s.Domain, s.ReadTimeout, s.WriteTimeout = "relay.test", 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(l) }()
	t.Cleanup(func() { s.Close(); <-done })
	return r
}

func (r *relay) received() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.mails...)
}

type relaySession struct{ r *relay }

func (s *relaySession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *relaySession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *relaySession) Reset()                               {}
func (s *relaySession) Logout() error                        { return nil }
func (s *relaySession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	s.r.mails = append(s.r.mails, b)
	s.r.mu.Unlock()
	return nil
}

// TestEmailRemindersThreaded: from the YAML to the mailbox. A notifier
// with repeat: 1h gets the trigger, a reminder an hour later and the
// resolve, all three in one thread, through the outbox and a real SMTP
// server.
func TestEmailRemindersThreaded(t *testing.T) {
	r := startRelay(t)
	yaml := `version: 1
notifiers:
  - name: mail
    repeat: 1h
    email: {smarthost: "` + r.addr + `", tls: none, from: outpost@example.com, to: [oncall@example.com]}
checks:
  - id: web-home
    http: {url: "http://127.0.0.1:1/"}
`
	cfg, err := checks.LoadBytes("mail.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ns, err := receivers.Build(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := startPipe(t, t.TempDir(), ns, func(o *Options) { o.Repeat = receivers.Repeats(cfg) })
	down := notifytest.PageDown("outpost-0123456789abcdef")
	h.enqueue(down)
	waitFor(t, "the trigger mailed", func() bool { return len(r.received()) == 1 })
	waitNextTimer(t, h, time.Hour)
	h.clock.Advance(time.Hour)
	waitFor(t, "the reminder mailed", func() bool { return len(r.received()) == 2 })
	h.enqueue(notifytest.ResolveOf(down))
	waitFor(t, "the resolve mailed", func() bool { return len(r.received()) == 3 })

	var ids []string
	thread := ""
	for i, raw := range r.received() {
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		subject := m.Header.Get("Subject")
		want := []string{"[CRITICAL]", "Reminder: [CRITICAL]", "[RESOLVED]"}[i]
		if !bytes.HasPrefix([]byte(subject), []byte(want)) {
			t.Errorf("mail %d: subject %q, want it to start with %q", i, subject, want)
		}
		if i == 0 {
			thread = m.Header.Get("References")
		}
		if thread == "" || m.Header.Get("References") != thread || m.Header.Get("In-Reply-To") != thread {
			t.Errorf("mail %d: References %q In-Reply-To %q, want the thread %q", i, m.Header.Get("References"), m.Header.Get("In-Reply-To"), thread)
		}
		ids = append(ids, m.Header.Get("Message-ID"))
	}
	if ids[0] == ids[1] || ids[1] == ids[2] || ids[0] == ids[2] {
		t.Errorf("Message-IDs %v: want three distinct", ids)
	}
	waitFor(t, "no reminder scheduled after the resolve", func() bool { _, ok := h.clock.Next(); return !ok })
}
