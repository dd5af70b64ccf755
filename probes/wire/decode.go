package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// maxBatchObjects bounds the JSON objects (and nulls) in a batch, and
// so the memory decoding it takes: 1000 results with three objects
// each, and DNS observations or steps, stay far below it.
const maxBatchObjects = 1 << 16

// Decode decodes body strictly: unknown fields, wrong types, trailing
// data, a body that is not one JSON object and one that would take far
// more memory decoded than as text are errors, whose message says what is
// wrong (callers add their own context, such as an "invalid batch" sentinel).
// It tries d's fast path first; a batch decoded there has its Results in
// d, valid until d's next use.
func (d *Decoder) Decode(body []byte) (Batch, error) {
	b, ok := d.decode(body)
	d.data = nil // a pooled Decoder must not keep a 4 MiB body alive
	switch {
	case ok:
		return b, nil
	case d.tooMany:
		return Batch{}, fmt.Errorf("more than %d results", MaxBatchResults)
	case d.tooComplex, countObjects(body) > maxBatchObjects:
		return Batch{}, fmt.Errorf("more than %d JSON objects and nulls", maxBatchObjects)
	}
	return decodeStrict(body)
}

// countObjects counts the objects and nulls of a JSON text, which bound
// the structs encoding/json would allocate for it: "[{},{},...]" costs
// about 3 bytes of body per 300-byte Result.
func countObjects(body []byte) int {
	n, inString := 0, false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case !inString && (c == '{' || c == 'n'):
			n++
		}
	}
	return n
}

// decodeStrict is Decode with encoding/json alone.
func decodeStrict(body []byte) (Batch, error) {
	var b Batch
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return Batch{}, errors.New(describeJSONError(err))
	}
	if rest := bytes.TrimSpace(body[dec.InputOffset():]); len(rest) > 0 {
		return Batch{}, fmt.Errorf("malformed JSON: data after the batch object at byte %d", dec.InputOffset())
	}
	return b, nil
}

// maxErrorBytes bounds a decoding error's message, whatever it quotes.
const maxErrorBytes = 256

// describeJSONError turns a decoding error into a message that names the
// field or the byte at fault. It quotes at most MaxQuoteBytes of an
// offending value: a 3,000,000-digit number is not echoed whole.
func describeJSONError(err error) string {
	return Clip(describeJSON(err), maxErrorBytes)
}

func describeJSON(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var parse *time.ParseError
	switch {
	case errors.Is(err, io.EOF):
		return "empty body; want a JSON batch object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: the body ends inside the batch"
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d: %s", syntax.Offset, syntax.Error())
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "batch"
		}
		return fmt.Sprintf("%s: got JSON %s, want %s (byte %d)", field, Clip(typ.Value, MaxQuoteBytes), typ.Type, typ.Offset)
	case errors.As(err, &parse):
		return fmt.Sprintf("time %s is not RFC 3339", Quote(parse.Value))
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if name, ok := strings.CutPrefix(msg, "unknown field "); ok {
		if s, err := strconv.Unquote(name); err == nil {
			return "unknown field " + Quote(s)
		}
	}
	return msg
}
