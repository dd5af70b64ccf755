package wire

import (
	"unicode/utf8"
)

// Decoder decodes batches as an evaluator receives them: strictly, within
// the wire limits, and fast. A Decoder is meant to be pooled and reused;
// it is not safe for concurrent use.
//
// Decoding a 500-result batch with encoding/json costs about 20
// allocations and 8µs per result, most of the evaluator's CPU. Decode
// first tries a fast path that decodes the common shape of a batch, as
// encoding/json.Marshal writes it, several times faster and with the
// strings of a batch interned. The fast path is deliberately partial: on
// anything it does not handle (null, duplicate or unknown keys, keys in
// another case, lone surrogates, invalid UTF-8, integers written as 1e3,
// fields added to the wire types since) it gives up, and Decode decodes the
// body again with encoding/json, whose verdict and message stand. So it
// never changes what is accepted: when it succeeds it yields what
// encoding/json would (FuzzFastDecoder checks it).
type Decoder struct {
	data []byte
	pos  int
	fail bool
	// objects counts the objects decoded, against maxBatchObjects.
	objects int
	// tooMany and tooComplex say that the batch is over a limit: a
	// verdict, not a reason to try encoding/json.
	tooMany, tooComplex bool

	scratch []byte            // unescaped string bytes
	intern  map[string]string // short strings seen recently; bounded
	results []Result          // reused across batches (see decode)
}

// Interning bounds.
const (
	maxInternLen     = 64
	maxInternEntries = 4096
)

// NewDecoder returns a Decoder with an empty intern table.
func NewDecoder() *Decoder {
	return &Decoder{intern: make(map[string]string, 256)}
}

// decode decodes data into a batch whose Results live in d's reusable
// array: they are valid until the next decode with d. It reports false if
// data is not on the fast path.
func (d *Decoder) decode(data []byte) (Batch, bool) {
	d.data, d.pos, d.fail = data, 0, false
	d.objects, d.tooMany, d.tooComplex = 0, false, false
	clear(d.results) // drop references from the previous batch
	d.results = d.results[:0]
	var b Batch
	d.batch(&b)
	d.ws()
	if d.fail || d.pos != len(d.data) {
		return Batch{}, false
	}
	return b, true
}

func (d *Decoder) batch(b *Batch) {
	var seen uint64
	d.object(func(key []byte) {
		switch string(key) {
		case "v":
			d.once(&seen, 0)
			b.V = int(d.int())
		case "agent":
			d.once(&seen, 1)
			b.Agent = d.str()
		case "region":
			d.once(&seen, 2)
			b.Region = d.str()
		case "seq":
			d.once(&seen, 3)
			b.Seq = d.uint(64)
		case "config_digest":
			d.once(&seen, 4)
			b.ConfigDigest = d.str()
		case "created":
			d.once(&seen, 5)
			b.Created = d.time()
		case "results":
			d.once(&seen, 6)
			d.array(func() {
				if len(d.results) == MaxBatchResults {
					d.tooMany, d.fail = true, true
					return
				}
				d.results = append(d.results, Result{})
				d.result(&d.results[len(d.results)-1])
			})
			b.Results = d.results
			if b.Results == nil {
				b.Results = []Result{}
			}
		default:
			d.fail = true
		}
	})
}

func (d *Decoder) result(r *Result) {
	var seen uint64
	d.object(func(key []byte) {
		switch string(key) {
		case "v":
			d.once(&seen, 0)
			r.V = int(d.int())
		case "check":
			d.once(&seen, 1)
			r.Check = d.str()
		case "type":
			d.once(&seen, 2)
			r.Type = d.str()
		case "region":
			d.once(&seen, 3)
			r.Region = d.str()
		case "agent":
			d.once(&seen, 4)
			r.Agent = d.str()
		case "seq":
			d.once(&seen, 5)
			r.Seq = d.uint(64)
		case "time":
			d.once(&seen, 6)
			r.Time = d.time()
		case "ok":
			d.once(&seen, 7)
			r.OK = d.bool()
		case "reason":
			d.once(&seen, 8)
			r.Reason = d.str()
		case "duration_seconds":
			d.once(&seen, 9)
			r.Duration = d.float()
		case "phases":
			d.once(&seen, 10)
			d.phases(&r.Phases)
		case "observed":
			d.once(&seen, 11)
			d.observed(&r.Observed)
		case "confirm":
			d.once(&seen, 12)
			r.Confirm = d.bool()
		default:
			d.fail = true
		}
	})
}

func (d *Decoder) phases(p *Phases) {
	var seen uint64
	d.object(func(key []byte) {
		switch string(key) {
		case "resolve":
			d.once(&seen, 0)
			p.Resolve = d.float()
		case "connect":
			d.once(&seen, 1)
			p.Connect = d.float()
		case "tls":
			d.once(&seen, 2)
			p.TLS = d.float()
		case "processing":
			d.once(&seen, 3)
			p.Processing = d.float()
		case "transfer":
			d.once(&seen, 4)
			p.Transfer = d.float()
		default:
			d.fail = true
		}
	})
}

// once fails the decode when the field numbered bit was seen before in
// this object: encoding/json merges duplicates, which is not worth
// copying.
func (d *Decoder) once(seen *uint64, bit uint) {
	if *seen&(1<<bit) != 0 {
		d.fail = true
	}
	*seen |= 1 << bit
}

// ws skips white space.
func (d *Decoder) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// consume skips white space and then c, or fails.
func (d *Decoder) consume(c byte) bool {
	d.ws()
	if d.pos < len(d.data) && d.data[d.pos] == c {
		d.pos++
		return true
	}
	d.fail = true
	return false
}

// peek skips white space and reports whether the next byte is c.
func (d *Decoder) peek(c byte) bool {
	d.ws()
	return d.pos < len(d.data) && d.data[d.pos] == c
}

// object decodes an object, calling field with each key positioned at its
// value, which field must consume.
func (d *Decoder) object(field func(key []byte)) {
	if !d.consume('{') || !d.count() {
		return
	}
	if d.peek('}') {
		d.pos++
		return
	}
	for !d.fail {
		key, ok := d.rawString()
		if !ok || !d.consume(':') {
			d.fail = true
			return
		}
		d.ws()
		field(key)
		if d.fail {
			return
		}
		if d.peek(',') {
			d.pos++
			continue
		}
		d.consume('}')
		return
	}
}

// count counts an object against maxBatchObjects.
func (d *Decoder) count() bool {
	d.objects++
	if d.objects > maxBatchObjects {
		d.tooComplex, d.fail = true, true
		return false
	}
	return true
}

// array decodes an array, calling elem for each element.
func (d *Decoder) array(elem func()) {
	if !d.consume('[') {
		return
	}
	if d.peek(']') {
		d.pos++
		return
	}
	for !d.fail {
		elem()
		if d.fail {
			return
		}
		if d.peek(',') {
			d.pos++
			continue
		}
		d.consume(']')
		return
	}
}

// rawString returns the bytes of a string without escapes or non-ASCII
// bytes, which alias d.data.
func (d *Decoder) rawString() ([]byte, bool) {
	if !d.consume('"') {
		return nil, false
	}
	start := d.pos
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			return d.data[start : d.pos-1], true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			d.fail = true
			return nil, false
		}
		d.pos++
	}
	d.fail = true
	return nil, false
}
