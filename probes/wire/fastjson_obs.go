package wire

import (
	"unicode/utf16"
	"unicode/utf8"
)

func (d *Decoder) observed(o *Observed) {
	var seen uint64
	d.object(func(key []byte) {
		switch string(key) {
		case "resolved_ips":
			d.once(&seen, 0)
			o.ResolvedIPs = d.strs()
		case "connected_addr":
			d.once(&seen, 1)
			o.ConnectedAddr = d.str()
		case "status_code":
			d.once(&seen, 2)
			o.StatusCode = int(d.int())
		case "http_version":
			d.once(&seen, 3)
			o.HTTPVersion = d.str()
		case "redirects":
			d.once(&seen, 4)
			o.Redirects = int(d.int())
		case "body_bytes":
			d.once(&seen, 5)
			o.BodyBytes = d.int()
		case "headers":
			d.once(&seen, 6)
			o.Headers = d.headers()
		case "tls":
			d.once(&seen, 7)
			o.TLS = d.tls()
		case "steps":
			d.once(&seen, 8)
			o.Steps = []StepObservation{}
			d.array(func() {
				o.Steps = append(o.Steps, StepObservation{})
				d.step(&o.Steps[len(o.Steps)-1])
			})
		case "line":
			d.once(&seen, 9)
			o.Line = d.str()
		case "dns":
			d.once(&seen, 10)
			o.DNS = []DNSObservation{}
			d.array(func() {
				o.DNS = append(o.DNS, DNSObservation{})
				d.dns(&o.DNS[len(o.DNS)-1])
			})
		case "value":
			// null, which Marshal never writes for it (omitempty), is
			// left to encoding/json like every other null.
			d.once(&seen, 11)
			o.Value = new(d.float())
		default:
			d.fail = true
		}
	})
}

func (d *Decoder) tls() *TLSObservation {
	t := &TLSObservation{}
	var seen uint64
	d.object(func(key []byte) {
		switch string(key) {
		case "version":
			d.once(&seen, 0)
			t.Version = d.str()
		case "server_name":
			d.once(&seen, 1)
			t.ServerName = d.str()
		case "not_after":
			d.once(&seen, 2)
			t.NotAfter = d.time()
		case "subject":
			d.once(&seen, 3)
			t.Subject = d.str()
		case "issuer":
			d.once(&seen, 4)
			t.Issuer = d.str()
		case "sans":
			d.once(&seen, 5)
			t.SANs = d.strs()
		case "serial":
			d.once(&seen, 6)
			t.Serial = d.str()
		case "fingerprint":
			d.once(&seen, 7)
			t.Fingerprint = d.str()
		default:
			d.fail = true
		}
	})
	return t
}

func (d *Decoder) step(s *StepObservation) {
	var seen uint64
	d.object(func(key []byte) {
		switch string(key) {
		case "name":
			d.once(&seen, 0)
			s.Name = d.str()
		case "ok":
			d.once(&seen, 1)
			s.OK = d.bool()
		case "status_code":
			d.once(&seen, 2)
			s.StatusCode = int(d.int())
		case "duration_seconds":
			d.once(&seen, 3)
			s.Duration = d.float()
		case "reason":
			d.once(&seen, 4)
			s.Reason = d.str()
		default:
			d.fail = true
		}
	})
}

func (d *Decoder) dns(o *DNSObservation) {
	var seen uint64
	d.object(func(key []byte) {
		switch string(key) {
		case "resolver":
			d.once(&seen, 0)
			o.Resolver = d.str()
		case "server":
			d.once(&seen, 1)
			o.Server = d.str()
		case "ns":
			d.once(&seen, 2)
			o.NS = d.str()
		case "transport":
			d.once(&seen, 3)
			o.Transport = d.str()
		case "rcode":
			d.once(&seen, 4)
			o.Rcode = d.str()
		case "aa":
			d.once(&seen, 5)
			o.Authoritative = d.bool()
		case "answers":
			d.once(&seen, 6)
			o.Answers = d.strs()
		case "min_ttl":
			d.once(&seen, 7)
			o.MinTTL = uint32(d.uint(32))
		case "cnames":
			d.once(&seen, 8)
			o.CNAMEs = d.strs()
		case "rtt_seconds":
			d.once(&seen, 9)
			o.RTT = d.float()
		case "error":
			d.once(&seen, 10)
			o.Error = d.str()
		default:
			d.fail = true
		}
	})
}

// strs decodes an array of strings; [] is an empty, non-nil slice, as
// encoding/json makes it.
func (d *Decoder) strs() []string {
	out := []string{}
	d.array(func() { out = append(out, d.str()) })
	return out
}

// headers decodes an object of strings into a new map.
func (d *Decoder) headers() map[string]string {
	m := map[string]string{}
	if !d.consume('{') || !d.count() {
		return nil
	}
	if d.peek('}') {
		d.pos++
		return m
	}
	for !d.fail {
		d.ws()
		k := d.str()
		if !d.consume(':') {
			return nil
		}
		d.ws()
		m[k] = d.str()
		if d.fail {
			return nil
		}
		if d.peek(',') {
			d.pos++
			continue
		}
		d.consume('}')
		return m
	}
	return nil
}

// str decodes a string, interning it if it is short.
func (d *Decoder) str() string {
	if !d.consume('"') {
		return ""
	}
	start, plain := d.pos, true
	for ; d.pos < len(d.data); d.pos++ {
		switch c := d.data[d.pos]; {
		case c == '"':
			raw := d.data[start:d.pos]
			d.pos++
			if plain {
				return d.internBytes(raw)
			}
			return d.unescape(raw)
		case c == '\\':
			plain = false
			d.pos++ // the escaped byte, which may be '"'
		case c < 0x20:
			d.fail = true
			return ""
		case c >= utf8.RuneSelf:
			plain = false
		}
	}
	d.fail = true
	return ""
}

// unescape decodes the contents of a string with escapes or non-ASCII
// bytes. Invalid UTF-8 and unpaired surrogates, which encoding/json
// replaces with U+FFFD, are left to it.
func (d *Decoder) unescape(raw []byte) string {
	if !utf8.Valid(raw) {
		d.fail = true
		return ""
	}
	out := d.scratch[:0]
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i == len(raw) {
			d.fail = true
			return ""
		}
		switch raw[i] {
		case '"', '\\', '/':
			out = append(out, raw[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(raw[i+1:])
			i += 4
			if ok && utf16.IsSurrogate(r) {
				// Only a high surrogate followed by \u and a low one.
				var lo rune
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					lo, ok = hex4(raw[i+3:])
					i += 6
				} else {
					ok = false
				}
				if r = utf16.DecodeRune(r, lo); r == utf8.RuneError {
					ok = false
				}
			}
			if !ok {
				d.fail = true
				return ""
			}
			out = utf8.AppendRune(out, r)
		default:
			d.fail = true
			return ""
		}
	}
	d.scratch = out
	return d.internBytes(out)
}

// hex4 decodes the four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r*16 + rune(c)
	}
	return r, true
}

// internBytes returns b as a string, the same string for the same bytes
// while the table holds it, so that a batch's repeated check names,
// regions, addresses and reasons cost one allocation each.
func (d *Decoder) internBytes(b []byte) string {
	if len(b) > maxInternLen {
		return string(b)
	}
	if s, ok := d.intern[string(b)]; ok {
		return s
	}
	if len(d.intern) >= maxInternEntries {
		clear(d.intern)
	}
	s := string(b)
	d.intern[s] = s
	return s
}
