// Package exposition serves Prometheus metrics cheaply when there are many
// series: a Source renders its families straight into the text and
// OpenMetrics formats from its own records, with label sets rendered once,
// instead of building a dto.Metric per series for the registry to sort and
// encode on every scrape. Everything else (protobuf, the Go runtime and
// process collectors) takes client_golang's ordinary path.
package exposition

import (
	"bufio"
	"math"
	"strconv"
	"strings"
)

// Type is a family's metric type, as far as Sources use them.
type Type int

// The types a Source may write.
const (
	Gauge Type = iota
	Counter
)

// Labels is a label set rendered once in the exposition syntax, without
// braces: `check="api",region="eu"`. Build it with MakeLabels, which
// escapes the values.
type Labels string

var valueEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

// MakeLabels renders name, value pairs. Names must be valid legacy label
// names (as every Outpost label is); values are escaped.
func MakeLabels(kv ...string) Labels {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[i])
		b.WriteString(`="`)
		valueEscaper.WriteString(&b, kv[i+1])
		b.WriteByte('"')
	}
	return Labels(b.String())
}

// Writer writes families in the negotiated format: the Prometheus text
// format 0.0.4, OpenMetrics 1.0, or delimited protobuf. Write errors are
// the underlying bufio.Writer's to keep.
type Writer struct {
	bw    *bufio.Writer
	om    bool
	proto bool
	// In protobuf, the current family's message is built in fam (open:
	// it has a sample), its label pairs parsed into pairs.
	fam   *[]byte
	open  bool
	pairs []string
	// The family whose HELP and TYPE lines are due before its first
	// sample: a family without samples is left out, as the registry does.
	name, help string
	typ        Type
	pending    bool
}

// kind is an exposition format a Writer writes.
type kind int

const (
	kindText kind = iota
	kindOpenMetrics
	kindProto
)

func newWriter(bw *bufio.Writer, k kind) *Writer {
	return &Writer{bw: bw, om: k == kindOpenMetrics, proto: k == kindProto}
}

// finish ends the last family; the Writer is not used after.
func (w *Writer) finish() {
	if w.proto {
		w.protoEnd()
		w.release()
	}
}

// reserve keeps the append-into-buffer idiom allocation-free: a line is
// appended to bufio's free space, flushed first when little is left.
const reserve = 512

var (
	helpEscaper   = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	omHelpEscaper = valueEscaper
)

// Family starts family name: the samples written next belong to it. Its
// HELP and TYPE lines are written with its first sample; a family without
// samples is left out, as the registry leaves it out. A counter's name
// must end in _total, and each family be written once per scrape.
func (w *Writer) Family(name, help string, typ Type) {
	if w.proto {
		w.protoEnd()
	}
	w.name, w.help, w.typ, w.pending = name, help, typ, true
}

// header writes the HELP and TYPE lines of the current family. A
// counter's name ends in _total; in OpenMetrics its family is named
// without it, as expfmt does.
func (w *Writer) header() {
	w.pending = false
	name, help, typ := w.name, w.help, w.typ
	if w.om && typ == Counter {
		name = strings.TrimSuffix(name, "_total")
	}
	w.bw.WriteString("# HELP ")
	w.bw.WriteString(name)
	w.bw.WriteByte(' ')
	if w.om {
		omHelpEscaper.WriteString(w.bw, help)
	} else {
		helpEscaper.WriteString(w.bw, help)
	}
	w.bw.WriteString("\n# TYPE ")
	w.bw.WriteString(name)
	if typ == Counter {
		w.bw.WriteString(" counter\n")
	} else {
		w.bw.WriteString(" gauge\n")
	}
}

// Sample writes one sample of the current family: name{labels} v, the
// non-empty label sets joined by commas. Prometheus reads labels in any
// order; expfmt sorts them by name, and so should the caller, for
// expositions that compare equal line by line.
func (w *Writer) Sample(v float64, labels ...Labels) {
	if w.proto {
		if w.pending {
			w.pending = false
			w.protoHeader()
		}
		w.protoSample(v, labels)
		return
	}
	if w.pending {
		w.header()
	}
	if w.bw.Available() < reserve {
		w.bw.Flush()
	}
	b := w.bw.AvailableBuffer()
	b = append(b, w.name...)
	open := false
	for _, l := range labels {
		if l == "" {
			continue
		}
		if open {
			b = append(b, ',')
		} else {
			b = append(b, '{')
			open = true
		}
		b = append(b, l...)
	}
	if open {
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = w.appendFloat(b, v)
	b = append(b, '\n')
	w.bw.Write(b)
}

// appendFloat formats v as expfmt does for the format.
func (w *Writer) appendFloat(b []byte, v float64) []byte {
	switch {
	case v == 0:
		if w.om {
			return append(b, "0.0"...)
		}
		return append(b, '0')
	case v == 1:
		if w.om {
			return append(b, "1.0"...)
		}
		return append(b, '1')
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	}
	n := len(b)
	b = strconv.AppendFloat(b, v, 'g', -1, 64)
	if w.om && !containsAny(b[n:], "e.") {
		b = append(b, ".0"...)
	}
	return b
}

func containsAny(b []byte, chars string) bool {
	for _, c := range b {
		if strings.IndexByte(chars, c) >= 0 {
			return true
		}
	}
	return false
}
