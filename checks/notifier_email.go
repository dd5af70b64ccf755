package checks

import (
	"crypto/x509"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// EmailNotifier sends mail through an SMTP server.
type EmailNotifier struct {
	// Smarthost is the SMTP server, host:port.
	Smarthost string `yaml:"smarthost"`
	// TLS is how the session is protected: starttls (the default, or
	// implicit on port 465), implicit, or none (only to a loopback server
	// unless AllowPlaintext).
	TLS string `yaml:"tls"`
	// AllowPlaintext allows tls: none to a server that is not on the
	// loopback interface: mail and password cross the network in clear.
	AllowPlaintext bool `yaml:"allow_plaintext"`
	// CAFile is a PEM bundle of the CAs that sign the server's
	// certificate, relative to the config file; empty means the system's.
	CAFile string `yaml:"ca_file"`
	// CAPEM holds the contents of CAFile, read at load.
	CAPEM []byte `yaml:"-"`
	// Username authenticates with Password and Auth; none means no
	// authentication.
	Username string `yaml:"username"`
	// Password is the username's password, from ${ENV}.
	Password Secret `yaml:"password"`
	// Auth is the SASL mechanism: plain (the default) or login.
	Auth string `yaml:"auth"`
	// From is the sender, a bare address.
	From string `yaml:"from"`
	// To are the recipients, bare addresses (at most 100).
	To  []string `yaml:"to"`
	Src Source
}

// Email TLS modes and authentication mechanisms.
const (
	EmailSTARTTLS    = "starttls"
	EmailImplicitTLS = "implicit"
	EmailNoTLS       = "none"
	EmailAuthPlain   = "plain"
	EmailAuthLogin   = "login"
)

// The values of email.tls and email.auth.
var (
	emailTLSModes = []string{EmailSTARTTLS, EmailImplicitTLS, EmailNoTLS}
	emailAuths    = []string{EmailAuthPlain, EmailAuthLogin}
)

// maxEmailRecipients bounds email.to.
const maxEmailRecipients = 100

func validateEmail(e *EmailNotifier, label string, errs *errorList) {
	host, port, err := net.SplitHostPort(e.Smarthost)
	switch {
	case e.Smarthost == "":
		errs.add(e.Src.Pos, "", "%s: email.smarthost is required, such as smarthost: smtp.example.com:587", label)
	case err != nil || host == "":
		errs.add(e.Src.At("smarthost"), "", "%s: email.smarthost %q: want host:port, such as smtp.example.com:587", label, e.Smarthost)
	default:
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			errs.add(e.Src.At("smarthost"), "", "%s: email.smarthost %q: port %q is not a number from 1 to 65535", label, e.Smarthost, port)
		}
	}
	switch e.TLS {
	case "":
		e.TLS = EmailSTARTTLS
		if port == "465" {
			e.TLS = EmailImplicitTLS
		}
	case EmailSTARTTLS, EmailImplicitTLS:
	case EmailNoTLS:
		if host != "" && !loopbackHost(host) && !e.AllowPlaintext {
			errs.add(e.Src.At("tls"), "", "%s: email.tls none sends mail and password in clear to %s, which is not a loopback address; use starttls or implicit, or set allow_plaintext: true", label, host)
		}
	default:
		errs.add(e.Src.At("tls"), "", "%s: email.tls %q: use starttls, implicit or none", label, e.TLS)
	}
	if e.CAFile != "" && e.TLS == EmailNoTLS {
		errs.add(e.Src.At("ca_file"), "", "%s: email.ca_file is set but tls is none", label)
	}
	switch {
	case e.Username == "" && !e.Password.IsZero():
		errs.add(e.Src.At("password"), "", "%s: email.password is set without a username", label)
	case e.Username != "" && e.Password.IsZero():
		errs.add(e.Src.Pos, "", "%s: email.username needs a password, such as password: ${SMTP_PASSWORD}", label)
	}
	switch e.Auth {
	case "":
		if e.Username != "" {
			e.Auth = EmailAuthPlain
		}
	case EmailAuthPlain, EmailAuthLogin:
		if e.Username == "" {
			errs.add(e.Src.At("auth"), "", "%s: email.auth %s needs a username and password", label, e.Auth)
		}
	default:
		errs.add(e.Src.At("auth"), "", "%s: email.auth %q: use plain or login", label, e.Auth)
	}
	if e.From == "" {
		errs.add(e.Src.Pos, "", "%s: email.from is required, such as from: outpost@example.com", label)
	} else if msg := checkAddress(e.From); msg != "" {
		errs.add(e.Src.At("from"), "", "%s: email.from %q %s", label, e.From, msg)
	}
	switch {
	case len(e.To) == 0:
		errs.add(e.Src.Pos, "", "%s: email.to is required: a list of recipients, such as to: [oncall@example.com]", label)
	case len(e.To) > maxEmailRecipients:
		errs.add(e.Src.At("to"), "", "%s: email.to has %d recipients; at most %d", label, len(e.To), maxEmailRecipients)
	}
	for i, to := range e.To {
		if msg := checkAddress(to); msg != "" {
			errs.add(e.Src.At("to["+strconv.Itoa(i)+"]"), "", "%s: email.to[%d] %q %s", label, i, to, msg)
		} else if slices.Index(e.To, to) < i {
			errs.add(e.Src.At("to["+strconv.Itoa(i)+"]"), "", "%s: email.to[%d] %q is listed twice", label, i, to)
		}
	}
}

// readEmailCA reads e's ca_file, relative to baseDir, so that a missing
// or unusable file is a load error rather than a failed delivery.
func readEmailCA(e *EmailNotifier, label, baseDir string, errs *errorList) {
	if e.CAFile == "" {
		return
	}
	p := e.CAFile
	if !filepath.IsAbs(p) {
		p = filepath.Join(baseDir, p)
	}
	info, err := os.Stat(p)
	switch {
	case err != nil:
		errs.add(e.Src.At("ca_file"), "", "%s: email.ca_file %q: %v", label, e.CAFile, unwrapPathError(err))
		return
	case !info.Mode().IsRegular():
		errs.add(e.Src.At("ca_file"), "", "%s: email.ca_file %q is not a regular file", label, e.CAFile)
		return
	case info.Size() > 1<<20:
		errs.add(e.Src.At("ca_file"), "", "%s: email.ca_file %q is larger than 1 MiB", label, e.CAFile)
		return
	}
	b, err := os.ReadFile(p)
	if err != nil {
		errs.add(e.Src.At("ca_file"), "", "%s: email.ca_file %q: %v", label, e.CAFile, unwrapPathError(err))
		return
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		errs.add(e.Src.At("ca_file"), "", "%s: email.ca_file %q holds no PEM certificate", label, e.CAFile)
		return
	}
	e.CAPEM = b
}

// checkAddress returns why s is not one plain mail address, or "".
func checkAddress(s string) string {
	a, err := mail.ParseAddress(s)
	switch {
	case err != nil:
		return "is not a mail address"
	case a.Name != "" || a.Address != s:
		return "must be a bare address, such as oncall@example.com"
	}
	return ""
}

// loopbackHost reports whether host names the loopback interface.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
