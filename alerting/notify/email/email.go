// Package email is the SMTP receiver: one mail per notification, plain
// text with an HTML alternative, threaded by incident. The password is a
// credential and appears in no error. It imports notify, never another
// receiver.
package email

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// dialTimeout bounds the TCP connection (and, with implicit TLS, the
// handshake); the whole session is bounded by notify.Options.Timeout.
const dialTimeout = 5 * time.Second

// Bounds on what a mail carries.
const (
	maxSubjectBytes  = 200
	maxEvidenceLines = 20
)

// Notifier sends mail through an SMTP server. The password appears in no
// error.
type Notifier struct {
	addr, host string
	mode       string
	tls        *tls.Config
	auth       func() sasl.Client
	from       string
	to         []string
	timeout    time.Duration
	redact     func(string) string
	domain     string
	now        func() time.Time
}

// New returns a notifier for cfg, which Load has validated (and whose
// ca_file it has read).
func New(cfg *checks.EmailNotifier, opts notify.Options) (*Notifier, error) {
	if cfg == nil || cfg.Smarthost == "" || cfg.From == "" || len(cfg.To) == 0 {
		return nil, errors.New("email: smarthost, from and to are required")
	}
	host, _, err := net.SplitHostPort(cfg.Smarthost)
	if err != nil {
		return nil, fmt.Errorf("email: smarthost %q: want host:port", cfg.Smarthost)
	}
	opts = opts.WithDefaults()
	n := &Notifier{
		addr: cfg.Smarthost, host: host, mode: cmp.Or(cfg.TLS, checks.EmailSTARTTLS),
		from: cfg.From, to: slices.Clone(cfg.To), timeout: opts.Timeout, now: opts.Clock.Now,
	}
	if _, d, ok := strings.Cut(cfg.From, "@"); ok {
		n.domain = d
	}
	if n.mode != checks.EmailNoTLS {
		n.tls = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if len(cfg.CAPEM) > 0 {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(cfg.CAPEM) {
				return nil, fmt.Errorf("email: ca_file %q holds no PEM certificate", cfg.CAFile)
			}
			n.tls.RootCAs = pool
		}
	}
	var secrets []string
	if cfg.Username != "" {
		user, pass := cfg.Username, cfg.Password.Value()
		secrets = append(secrets, pass)
		switch cfg.Auth {
		case checks.EmailAuthLogin:
			n.auth = func() sasl.Client { return sasl.NewLoginClient(user, pass) }
		default:
			n.auth = func() sasl.Client { return sasl.NewPlainClient("", user, pass) }
		}
	}
	n.redact = opts.Redactor(notify.NonTrivial(secrets)...)
	return n, nil
}

// Notify sends n as one mail to every recipient in one SMTP session,
// bounded by the notifier's timeout as well as ctx. A 4xx reply is worth
// another attempt, a 5xx one is not; a failed connection, handshake or
// session is.
func (e *Notifier) Notify(ctx context.Context, n notify.Notification) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	msg, err := e.message(n)
	if err != nil {
		return false, fmt.Errorf("email: %w", err)
	}
	err = e.send(ctx, msg)
	if err == nil {
		return false, nil
	}
	var pe *partialError
	if errors.As(err, &pe) {
		return false, fmt.Errorf("email: %s", wire.Clip(e.redact(pe.Error()), 600))
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) && ctx.Err() == nil {
		return se.Code/100 == 4, &notify.DeliveryError{Notifier: "email", StatusCode: se.Code,
			Message: wire.Clip(e.redact(replyText(se)), 300)}
	}
	if ctx.Err() != nil {
		// The session was cut (the connection closed under it): say why.
		err = fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return notify.Failed("email", err, e.redact)
}

func codeText(se *smtp.SMTPError) string {
	c := fmt.Sprint(se.Code)
	if se.EnhancedCode != (smtp.EnhancedCode{}) && se.EnhancedCode != smtp.NoEnhancedCode {
		c += fmt.Sprintf(" %d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	}
	return c
}

// send runs one SMTP session. The connection is closed when ctx ends,
// whatever the session is doing: go-smtp's own deadlines cover one
// command at a time, not the session.
func (e *Notifier) send(ctx context.Context, msg []byte) error {
	d := net.Dialer{Timeout: dialTimeout}
	raw, err := d.DialContext(ctx, "tcp", e.addr)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	defer raw.Close()
	conn := raw
	if e.mode == checks.EmailImplicitTLS {
		tc := tls.Client(raw, e.tls)
		hctx, cancel := context.WithTimeout(ctx, dialTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			return fmt.Errorf("tls handshake: %w", err)
		}
		conn = tc
	}
	var c *smtp.Client
	if e.mode == checks.EmailSTARTTLS {
		// go-smtp says EHLO and checks that STARTTLS is offered first.
		if c, err = smtp.NewClientStartTLS(conn, e.tls); err != nil {
			return fmt.Errorf("starttls: %w", err)
		}
	} else {
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout, c.SubmissionTimeout = e.timeout, e.timeout
	defer c.Close()
	// Greet (and, after STARTTLS, shake hands) now, so that a failure
	// says what failed rather than that an extension is missing.
	if err := c.Noop(); err != nil {
		return err
	}
	if e.auth != nil {
		if ok, _ := c.Extension("AUTH"); !ok {
			return errors.New("the server does not offer AUTH, and a username is configured")
		}
		if err := c.Auth(e.auth()); err != nil {
			return err
		}
	}
	if err := c.Mail(e.from, nil); err != nil {
		return err
	}
	// A recipient refused for good does not cost the others their mail:
	// it goes to the rest, and the refusal is reported after.
	var refused []string
	var firstRefusal error
	for _, to := range e.to {
		err := c.Rcpt(to, nil)
		var se *smtp.SMTPError
		switch {
		case err == nil:
		case errors.As(err, &se) && se.Code/100 == 5:
			refused = append(refused, to)
			if firstRefusal == nil {
				firstRefusal = err
			}
		default:
			return err // 4xx or broken: the whole mail is tried again
		}
	}
	if len(refused) == len(e.to) {
		return firstRefusal
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	// The mail is accepted; a failed QUIT changes nothing.
	_ = c.Quit()
	if len(refused) > 0 {
		return &partialError{refused: refused, cause: firstRefusal, of: len(e.to)}
	}
	return nil
}

// partialError is a mail delivered to some recipients and refused for
// good for the others: not worth another attempt (the others would get it
// twice), but worth saying.
type partialError struct {
	refused []string
	of      int
	cause   error
}

func (p *partialError) Error() string {
	return fmt.Sprintf("delivered to %d of %d recipients; refused %s: %s", p.of-len(p.refused), p.of, strings.Join(p.refused, ", "), replyText(p.cause))
}

// replyText is an SMTP reply as "smtp 550 5.1.1: text", or err's text.
func replyText(err error) string {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return err.Error()
	}
	return "smtp " + codeText(se) + ": " + strings.Join(strings.Fields(se.Message), " ")
}

// threadID is the Message-ID every mail of an incident refers to, derived
// from its dedup key alone, so that every evaluator and every restart
// threads the trigger, its updates and reminders and its resolve together.
func (e *Notifier) threadID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "<outpost." + hex.EncodeToString(sum[:12]) + "@" + e.idDomain() + ">"
}

// messageID is this mail's own Message-ID: the thread's key hash with a
// hash of the mail's action, time and summary, deterministic too.
func (e *Notifier) messageID(n notify.Notification) string {
	sum := sha256.Sum256([]byte(n.Key + "\x00" + n.Action + "\x00" + n.Time.UTC().Format(time.RFC3339Nano) + "\x00" + n.Summary))
	kh := sha256.Sum256([]byte(n.Key))
	return "<outpost." + hex.EncodeToString(kh[:12]) + "." + hex.EncodeToString(sum[:8]) + "@" + e.idDomain() + ">"
}

func (e *Notifier) idDomain() string {
	if e.domain != "" {
		return e.domain
	}
	return "outpost.invalid"
}

// headerText makes s safe in a header: one line, encoded when not ASCII.
func headerText(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return mime.QEncoding.Encode("utf-8", s)
}

// subject is "[SEVERITY] check STATE: summary", or [RESOLVED]; a reminder
// says so first.
func subject(n notify.Notification) string {
	sev := strings.ToUpper(notify.SeverityOf(n))
	if n.Action == notify.ActionResolve {
		sev = "RESOLVED"
	}
	var b strings.Builder
	if notify.IsReminder(n) {
		b.WriteString("Reminder: ")
	}
	b.WriteString("[" + sev + "] ")
	if n.Check != "" {
		b.WriteString(n.Check + " ")
	}
	b.WriteString(state(n) + ": ")
	summary := n.Summary
	if summary == "" {
		summary = n.Key
	}
	b.WriteString(summary)
	return wire.Clip(b.String(), maxSubjectBytes)
}

// state names where the subject stands: the check's state, else the kind.
func state(n notify.Notification) string {
	if n.Action == notify.ActionResolve {
		return "OK"
	}
	if s := n.Details["state"]; s != "" {
		return strings.ToUpper(s)
	}
	return strings.ToUpper(strings.TrimPrefix(n.Kind, notify.KindCheckPrefix))
}

// message renders n as an RFC 5322 mail: a multipart/alternative of plain
// text and HTML, quoted-printable.
func (e *Notifier) message(n notify.Notification) ([]byte, error) {
	var htmlBody bytes.Buffer
	if err := htmlTmpl.Execute(&htmlBody, view(n)); err != nil {
		return nil, err
	}
	boundary := fmt.Sprintf("outpost-%016x", rand.Uint64())
	var b bytes.Buffer
	h := textproto.MIMEHeader{}
	h.Set("From", e.from)
	// Folded, one recipient a line: a header line must stay under 998
	// bytes whatever the number of recipients.
	h.Set("To", strings.Join(e.to, ",\r\n "))
	h.Set("Subject", headerText(subject(n)))
	h.Set("Date", cmpTime(n.Time, e.now()).Format(time.RFC1123Z))
	// Every mail has an id of its own (a client drops a mail whose id it
	// has seen: a second incident of the same check, an update) and
	// refers to the incident's thread, so that the trigger, its updates
	// and reminders and its resolve are one thread.
	thread := e.threadID(n.Key)
	h.Set("Message-ID", e.messageID(n))
	h.Set("In-Reply-To", thread)
	h.Set("References", thread)
	h.Set("X-Outpost-Key", headerText(n.Key))
	h.Set("Auto-Submitted", "auto-generated")
	h.Set("MIME-Version", "1.0")
	h.Set("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
	for _, k := range []string{"From", "To", "Subject", "Date", "Message-ID", "In-Reply-To", "References", "X-Outpost-Key", "Auto-Submitted", "MIME-Version", "Content-Type"} {
		if v := h.Get(k); v != "" {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	part := func(ctype string, body []byte) {
		fmt.Fprintf(&b, "--%s\r\nContent-Type: %s; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n", boundary, ctype)
		w := quotedprintable.NewWriter(&b)
		w.Write(body)
		w.Close()
		b.WriteString("\r\n")
	}
	part("text/plain", []byte(plainText(n)))
	part("text/html", htmlBody.Bytes())
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return b.Bytes(), nil
}

func cmpTime(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t
}

// mailView is what both bodies show.
type mailView struct {
	Headline string
	Facts    [][2]string
	Evidence [][2]string
	More     int
	Members  []string
	Link     string
	Runbook  string
}

func view(n notify.Notification) mailView {
	v := mailView{Headline: subject(n), Link: n.Link, Runbook: n.Runbook}
	add := func(k, val string) {
		if val != "" {
			v.Facts = append(v.Facts, [2]string{k, val})
		}
	}
	add("Check", n.Check)
	add("State", state(n))
	add("Severity", notify.SeverityOf(n))
	add("Target", n.Target)
	add("Region", n.Region)
	add("Key", n.Key)
	add("From", n.Source)
	if !n.Time.IsZero() {
		add("Time", n.Time.UTC().Format(time.RFC3339))
	}
	add("Down for", n.Details["down_for"])
	for i, ev := range n.Evidence {
		if i == maxEvidenceLines {
			v.More = len(n.Evidence) - i
			break
		}
		v.Evidence = append(v.Evidence, [2]string{ev.Region, notify.EvidenceLine(ev)})
	}
	for i, m := range n.Members {
		if i == maxEvidenceLines {
			v.Members = append(v.Members, fmt.Sprintf("… and %d more", len(n.Members)-i))
			break
		}
		v.Members = append(v.Members, m.State+" "+m.Check+": "+m.Summary)
	}
	return v
}

func plainText(n notify.Notification) string {
	v := view(n)
	var b strings.Builder
	b.WriteString(v.Headline + "\n\n")
	for _, f := range v.Facts {
		fmt.Fprintf(&b, "%-9s %s\n", f[0]+":", f[1])
	}
	if len(v.Evidence) > 0 {
		b.WriteString("\nRegions:\n")
		for _, ev := range v.Evidence {
			fmt.Fprintf(&b, "  %s: %s\n", ev[0], ev[1])
		}
		if v.More > 0 {
			fmt.Fprintf(&b, "  … and %d more regions\n", v.More)
		}
	}
	if len(v.Members) > 0 {
		b.WriteString("\nIncidents:\n")
		for _, m := range v.Members {
			b.WriteString("  " + m + "\n")
		}
	}
	if v.Link != "" {
		b.WriteString("\nStatus page: " + v.Link + "\n")
	}
	if v.Runbook != "" {
		b.WriteString("Runbook: " + v.Runbook + "\n")
	}
	b.WriteString("\n-- \nSent by Outpost.\n")
	return b.String()
}

// htmlTmpl is the HTML alternative: html/template escapes every value,
// and a link is kept only when it is http(s).
var htmlTmpl = template.Must(template.New("mail").Parse(`<!DOCTYPE html>
<html><body style="font-family:sans-serif">
<h2>{{.Headline}}</h2>
<table>{{range .Facts}}<tr><th align="left">{{index . 0}}</th><td>{{index . 1}}</td></tr>
{{end}}</table>
{{if .Evidence}}<h3>Regions</h3><ul>{{range .Evidence}}<li><b>{{index . 0}}</b>: {{index . 1}}</li>
{{end}}{{if .More}}<li>… and {{.More}} more regions</li>{{end}}</ul>{{end}}
{{if .Members}}<h3>Incidents</h3><ul>{{range .Members}}<li>{{.}}</li>
{{end}}</ul>{{end}}
<p>{{if .Link}}<a href="{{.Link}}">Status page</a> {{end}}{{if .Runbook}}<a href="{{.Runbook}}">Runbook</a>{{end}}</p>
</body></html>
`))
