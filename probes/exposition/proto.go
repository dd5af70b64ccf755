package exposition

import (
	"encoding/binary"
	"math"
	"strings"
	"sync"
)

// The delimited protobuf format (io.prometheus.client.MetricFamily, each
// preceded by its length as a varint), written by hand for Sources: a
// family is built in a buffer, since its length comes first. Field
// numbers are those of client_model's metrics.proto.
const (
	fieldFamilyName   = 1
	fieldFamilyHelp   = 2
	fieldFamilyType   = 3
	fieldFamilyMetric = 4
	fieldMetricLabel  = 1
	fieldMetricGauge  = 2
	fieldMetricCount  = 3
	fieldLabelName    = 1
	fieldLabelValue   = 2
	fieldValue        = 1

	typeCounter = 0 // io.prometheus.client.MetricType
	typeGauge   = 1

	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
)

var famPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func appendVarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendTag(b []byte, field, wire int) []byte { return appendVarint(b, uint64(field<<3|wire)) }

func appendBytesField(b []byte, field int, s string) []byte {
	b = appendTag(b, field, wireBytes)
	b = appendVarint(b, uint64(len(s)))
	return append(b, s...)
}

func varintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func bytesFieldLen(n int) int { return 1 + varintLen(uint64(n)) + n }

// protoHeader starts the current family's message in w.fam.
func (w *Writer) protoHeader() {
	if w.fam == nil {
		w.fam = famPool.Get().(*[]byte)
	}
	b := (*w.fam)[:0]
	b = appendBytesField(b, fieldFamilyName, w.name)
	b = appendBytesField(b, fieldFamilyHelp, w.help)
	b = appendTag(b, fieldFamilyType, wireVarint)
	if w.typ == Counter {
		b = appendVarint(b, typeCounter)
	} else {
		b = appendVarint(b, typeGauge)
	}
	*w.fam = b
	w.open = true
}

// protoSample adds one Metric to the current family.
func (w *Writer) protoSample(v float64, labels []Labels) {
	// The Metric's length: its label pairs, then its value.
	pairs := w.pairs[:0]
	for _, l := range labels {
		pairs = parseLabels(pairs, string(l))
	}
	n := bytesFieldLen(9) // gauge or counter holding a double
	for i := 0; i < len(pairs); i += 2 {
		n += bytesFieldLen(bytesFieldLen(len(pairs[i])) + bytesFieldLen(len(pairs[i+1])))
	}
	b := *w.fam
	b = appendTag(b, fieldFamilyMetric, wireBytes)
	b = appendVarint(b, uint64(n))
	for i := 0; i < len(pairs); i += 2 {
		b = appendTag(b, fieldMetricLabel, wireBytes)
		b = appendVarint(b, uint64(bytesFieldLen(len(pairs[i]))+bytesFieldLen(len(pairs[i+1]))))
		b = appendBytesField(b, fieldLabelName, pairs[i])
		b = appendBytesField(b, fieldLabelValue, pairs[i+1])
	}
	if w.typ == Counter {
		b = appendTag(b, fieldMetricCount, wireBytes)
	} else {
		b = appendTag(b, fieldMetricGauge, wireBytes)
	}
	b = appendVarint(b, 9)
	b = appendTag(b, fieldValue, wireFixed64)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	*w.fam = b
	clear(pairs)
	w.pairs = pairs[:0]
}

// protoEnd writes the current family, length first.
func (w *Writer) protoEnd() {
	if !w.open {
		return
	}
	w.open = false
	b := w.bw.AvailableBuffer()
	w.bw.Write(appendVarint(b, uint64(len(*w.fam))))
	w.bw.Write(*w.fam)
}

// release returns the family buffer to its pool.
func (w *Writer) release() {
	if w.fam != nil {
		if cap(*w.fam) <= 16<<20 {
			famPool.Put(w.fam)
		}
		w.fam = nil
	}
}

// parseLabels appends the names and values of a rendered label set to
// pairs, unescaping the values that hold escapes.
func parseLabels(pairs []string, l string) []string {
	for l != "" {
		eq := strings.IndexByte(l, '=')
		if eq < 0 || eq+1 >= len(l) || l[eq+1] != '"' {
			return pairs // not from MakeLabels
		}
		name := l[:eq]
		l = l[eq+2:]
		end, escaped := 0, false
		for end < len(l) && l[end] != '"' {
			if l[end] == '\\' {
				escaped = true
				end++
			}
			end++
		}
		value := l[:min(end, len(l))]
		if escaped {
			value = unescape(value)
		}
		pairs = append(pairs, name, value)
		l = l[min(end+1, len(l)):]
		l = strings.TrimPrefix(l, ",")
	}
	return pairs
}

// unescape undoes MakeLabels' escapes.
func unescape(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\\' && i+1 < len(v) {
			i++
			switch v[i] {
			case 'n':
				c = '\n'
			default:
				c = v[i]
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}
