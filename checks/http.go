package checks

import (
	"crypto/x509"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

// HTTPRequest is what one HTTP request sends. It is shared by single-request
// checks and by each step of a multi-step check. In steps, "{{name}}" in the
// URL, headers, query and body is replaced by a value captured earlier.
type HTTPRequest struct {
	URL      string            `yaml:"url"`
	Method   string            `yaml:"method"`
	Headers  map[string]string `yaml:"headers"`
	Query    map[string]string `yaml:"query"`
	Body     string            `yaml:"body"`
	BodyFile string            `yaml:"body_file"`
	Expect   *HTTPExpect       `yaml:"expect"`
}

// HTTPSpec is an HTTP check: one request, or Steps run in order.
type HTTPSpec struct {
	HTTPRequest `yaml:",inline"`

	Steps           []HTTPStep  `yaml:"steps"`
	BasicAuth       *BasicAuth  `yaml:"basic_auth"`
	BearerToken     Secret      `yaml:"bearer_token"`
	FollowRedirects *bool       `yaml:"follow_redirects"`
	MaxRedirects    int         `yaml:"max_redirects"`
	TLS             *TLSOptions `yaml:"tls"`
	IPProtocol      string      `yaml:"ip_protocol"`
	MaxBodyBytes    Size        `yaml:"max_body_bytes"`
	// Resolver is "host:port" of a DNS server to resolve the target through;
	// empty means the system resolver.
	Resolver string `yaml:"resolver"`
	// CertWarnDays is how many days before the server's certificate
	// expires the evaluator sends one warning-route notification about it
	// (per certificate, never a page on the critical route). It must be
	// above expect.cert_min_days; 0 turns warnings off. Default 21, or
	// cert_min_days + 7 when cert_min_days is 21 or more.
	CertWarnDays int `yaml:"cert_warn_days"`

	Src Source

	// BodyBytes holds the request body read from BodyFile at load.
	BodyBytes []byte `yaml:"-"`
}

// HTTPStep is one request of a multi-step HTTP check.
type HTTPStep struct {
	Name        string `yaml:"name"`
	HTTPRequest `yaml:",inline"`
	// Capture names values taken from this step's response for later steps.
	Capture map[string]*Capture `yaml:"capture"`
	Src     Source

	BodyBytes []byte `yaml:"-"`
}

// Capture takes one value from a response: a JSON path in the body, a
// header, or the first submatch of a regular expression over the body.
type Capture struct {
	JSON   JSONPath       `yaml:"json"`
	Header string         `yaml:"header"`
	Regex  *regexp.Regexp `yaml:"regex"`
	Src    Source
}

// BasicAuth is HTTP basic authentication; the password is a Secret.
type BasicAuth struct {
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
	Src      Source
}

// TLSOptions configure the TLS client of HTTP checks.
type TLSOptions struct {
	ServerName string `yaml:"server_name"`
	CAFile     string `yaml:"ca_file"`
	// InsecureSkipVerify turns off certificate verification. It must be
	// spelled out; there is no shorter alias.
	InsecureSkipVerify bool       `yaml:"insecure_skip_verify"`
	MinVersion         TLSVersion `yaml:"min_version"`
	Src                Source

	// CAPEM holds the contents of CAFile, read at load.
	CAPEM []byte `yaml:"-"`
}

// HTTPExpect is what a response must satisfy. Unset fields are not checked,
// except Status, which defaults to 2xx.
type HTTPExpect struct {
	Status          StatusSet                 `yaml:"status"`
	BodyContains    string                    `yaml:"body_contains"`
	BodyNotContains string                    `yaml:"body_not_contains"`
	BodyRegex       *regexp.Regexp            `yaml:"body_regex"`
	JSON            JSONExpect                `yaml:"json"`
	Headers         map[string]*regexp.Regexp `yaml:"headers"`
	Addresses       []netip.Prefix            `yaml:"addresses"`
	MaxLatency      time.Duration             `yaml:"max_latency"`
	CertMinDays     int                       `yaml:"cert_min_days"`
	// Fresh asserts that a time in the response (a JSON field or a header
	// such as Last-Modified) is recent: a status page or feed that stopped
	// updating fails even though it answers 200.
	Fresh *Freshness `yaml:"fresh"`
	// CEL is a CEL expression over the response (status, headers, body,
	// json, timings) that must be true; it is compiled at load.
	CEL *CELExpr `yaml:"cel"`
	Src Source
}

// Freshness takes a time from the JSON body or a header and requires it
// to be at most MaxAge old.
type Freshness struct {
	JSON   JSONPath      `yaml:"json"`
	Header string        `yaml:"header"`
	MaxAge time.Duration `yaml:"max_age"`
	Src    Source
}

var (
	captureRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	templateRE = regexp.MustCompile(`\{\{\s*([^{}]*?)\s*\}\}`)
	methodRE   = regexp.MustCompile(`^[A-Z]+$`)
)

func validateHTTP(c *Check, id string, errs *errorList) {
	h := c.HTTP
	validateIPProtocol(h.IPProtocol, &h.Src, id, errs)
	validateResolver(h.Resolver, &h.Src, id, errs)
	if h.FollowRedirects == nil {
		yes := true
		h.FollowRedirects = &yes
	}
	if !h.Src.Has("max_redirects") {
		h.MaxRedirects = 10
	} else if h.MaxRedirects < 0 || h.MaxRedirects > maxRedirectsLimit {
		errs.add(h.Src.At("max_redirects"), id, "max_redirects %d must be between 0 and %d", h.MaxRedirects, maxRedirectsLimit)
	}
	if !h.Src.Has("max_body_bytes") {
		h.MaxBodyBytes = DefaultMaxBodyBytes
	} else if h.MaxBodyBytes < 1 || h.MaxBodyBytes > MaxBodyBytesLimit {
		errs.add(h.Src.At("max_body_bytes"), id, "max_body_bytes must be between 1 and %d MiB", MaxBodyBytesLimit>>20)
	}
	minDays, minKey := httpCertMinDays(h)
	validateCertWarn(&h.CertWarnDays, &h.Src, minDays, minKey, httpCanSeeCert(h), id, errs)
	if h.BasicAuth != nil {
		if h.BasicAuth.Username == "" {
			errs.add(h.BasicAuth.Src.Pos, id, "basic_auth.username is required")
		}
		if !h.BearerToken.IsZero() || h.Src.Has("bearer_token") {
			errs.add(h.Src.At("bearer_token"), id, "use basic_auth or bearer_token, not both")
		}
	}
	if h.TLS != nil && h.TLS.CAFile != "" && h.TLS.CAPEM != nil {
		if !x509.NewCertPool().AppendCertsFromPEM(h.TLS.CAPEM) {
			errs.add(h.TLS.Src.At("ca_file"), id, "tls.ca_file %q holds no PEM certificate", h.TLS.CAFile)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(h.Headers)) {
		if !headerKeyRE.MatchString(name) {
			errs.add(h.Src.At("headers."+name), id, "header name %q is not a valid HTTP token", name)
		}
	}

	if len(h.Steps) == 0 {
		if h.URL == "" {
			errs.add(h.Src.At("url"), id, "http.url is required (or steps: for a multi-step check)")
			return
		}
		validateRequest(&h.HTTPRequest, &h.Src, c, id, "", nil, errs)
		return
	}
	for _, key := range []string{"url", "method", "query", "body", "body_file", "expect"} {
		if h.Src.Has(key) {
			errs.add(h.Src.At(key), id, "http.%s: set it on each step, not beside steps:", key)
		}
	}
	if len(h.Steps) > maxSteps {
		errs.add(h.Src.At("steps"), id, "%d steps is more than the limit of %d", len(h.Steps), maxSteps)
	}
	captured := map[string]bool{}
	names := map[string]bool{}
	for i := range h.Steps {
		s := &h.Steps[i]
		if s.Name == "" {
			s.Name = fmt.Sprintf("step %d", i+1)
		}
		label := fmt.Sprintf("step %q: ", s.Name)
		if names[s.Name] {
			errs.add(s.Src.At("name"), id, "%sname is used by another step", label)
		}
		names[s.Name] = true
		if s.URL == "" {
			errs.add(s.Src.At("url"), id, "%surl is required", label)
		} else {
			validateRequest(&s.HTTPRequest, &s.Src, c, id, label, captured, errs)
		}
		for _, name := range slices.Sorted(maps.Keys(s.Capture)) {
			cp := s.Capture[name]
			switch {
			case !captureRE.MatchString(name):
				errs.add(s.Src.At("capture."+name), id, "%scapture name %q: use letters, digits and '_'", label, name)
			case captured[name]:
				errs.add(s.Src.At("capture."+name), id, "%s%q is captured by an earlier step", label, name)
			}
			n := 0
			if !cp.JSON.IsZero() {
				n++
			}
			if cp.Header != "" {
				n++
			}
			if cp.Regex != nil {
				n++
				if cp.Regex.NumSubexp() < 1 {
					errs.add(cp.Src.At("regex"), id, "%scapture %q: regex needs a group ( ... ) around the value to capture", label, name)
				}
			}
			if n != 1 {
				errs.add(cp.Src.Pos, id, "%scapture %q: set exactly one of json, header or regex", label, name)
			}
		}
		for name := range s.Capture {
			captured[name] = true
		}
	}
}

// validateRequest checks one request. captured is nil outside steps; inside
// steps it holds the names earlier steps capture, which templates may use.
func validateRequest(r *HTTPRequest, src *Source, c *Check, id, label string, captured map[string]bool, errs *errorList) {
	// templ checks the {{name}} references in s, the value of key, written
	// at src.At(at).
	templ := func(key, at, s string) string {
		for _, m := range templateRE.FindAllStringSubmatch(s, -1) {
			switch {
			case captured == nil:
				errs.add(src.At(at), id, "%s%s uses {{%s}}, but captures exist only in multi-step checks", label, key, m[1])
			case !captured[m[1]]:
				errs.add(src.At(at), id, "%s%s uses {{%s}}, which no earlier step captures", label, key, m[1])
			}
		}
		return templateRE.ReplaceAllString(s, "x")
	}
	// A URL that is wholly a captured value ("{{location}}") is checked when
	// the step runs.
	wholeTemplate := templateRE.MatchString(r.URL) && strings.HasPrefix(strings.TrimSpace(r.URL), "{{")
	if u := templ("url", "url", r.URL); u != "" && !wholeTemplate {
		if msg := checkURL(u, src.fromEnv("url")); msg != "" {
			errs.add(src.At("url"), id, "%surl %s", label, msg)
		} else if r.Expect != nil && r.Expect.CertMinDays > 0 && strings.HasPrefix(strings.ToLower(u), "http:") {
			errs.add(r.Expect.Src.At("cert_min_days"), id, "%sexpect.cert_min_days needs an https URL", label)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Headers)) {
		templ("headers", "headers."+k, r.Headers[k])
		if !headerKeyRE.MatchString(k) {
			errs.add(src.At("headers."+k), id, "%sheader name %q is not a valid HTTP token", label, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Query)) {
		templ("query", "query."+k, r.Query[k])
	}
	templ("body", "body", r.Body)
	if r.Method == "" {
		r.Method = "GET"
	} else if !methodRE.MatchString(r.Method) {
		errs.add(src.At("method"), id, "%smethod %q: use an upper-case HTTP method such as GET or POST", label, r.Method)
	}
	if r.Body != "" && r.BodyFile != "" {
		errs.add(src.At("body_file"), id, "%suse body or body_file, not both", label)
	}
	if e := r.Expect; e != nil {
		if e.CertMinDays < 0 {
			errs.add(e.Src.At("cert_min_days"), id, "%sexpect.cert_min_days must not be negative", label)
		}
		validateLatency(e.MaxLatency, c.Timeout, &e.Src, id, errs)
		if f := e.Fresh; f != nil {
			if f.JSON.IsZero() == (f.Header == "") {
				errs.add(f.Src.Pos, id, "%sexpect.fresh: set exactly one of json (a JSON path) or header (such as Last-Modified)", label)
			}
			if f.MaxAge <= 0 {
				errs.add(f.Src.At("max_age"), id, "%sexpect.fresh.max_age is required and must be above 0", label)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(e.Headers)) {
			if !headerKeyRE.MatchString(name) {
				errs.add(e.Src.At("headers."+name), id, "%sexpect.headers: %q is not a valid header name", label, name)
			}
		}
	}
}
