package wire

import (
	"strconv"
	"time"
)

// time decodes a string with time.Time's own UnmarshalJSON, as
// encoding/json does.
func (d *Decoder) time() time.Time {
	start := d.pos
	if _, ok := d.rawString(); !ok {
		return time.Time{}
	}
	var t time.Time
	if err := t.UnmarshalJSON(d.data[start:d.pos]); err != nil {
		d.fail = true
	}
	return t
}

func (d *Decoder) bool() bool {
	switch {
	case d.literal("true"):
		return true
	case d.literal("false"):
		return false
	}
	d.fail = true
	return false
}

func (d *Decoder) literal(lit string) bool {
	if len(d.data)-d.pos >= len(lit) && string(d.data[d.pos:d.pos+len(lit)]) == lit {
		d.pos += len(lit)
		return true
	}
	return false
}

// number returns the bytes of a number literal, checked against the JSON
// grammar, and whether it is an integer (no fraction, no exponent).
func (d *Decoder) number() (lit []byte, integer bool) {
	start, p := d.pos, d.pos
	digits := func() int {
		n := 0
		for p < len(d.data) && d.data[p] >= '0' && d.data[p] <= '9' {
			p++
			n++
		}
		return n
	}
	if p < len(d.data) && d.data[p] == '-' {
		p++
	}
	switch n := digits(); {
	case n == 0, n > 1 && d.data[p-n] == '0':
		d.fail = true
		return nil, false
	}
	integer = true
	if p < len(d.data) && d.data[p] == '.' {
		p++
		integer = false
		if digits() == 0 {
			d.fail = true
			return nil, false
		}
	}
	if p < len(d.data) && (d.data[p] == 'e' || d.data[p] == 'E') {
		p++
		integer = false
		if p < len(d.data) && (d.data[p] == '+' || d.data[p] == '-') {
			p++
		}
		if digits() == 0 {
			d.fail = true
			return nil, false
		}
	}
	d.pos = p
	return d.data[start:p], integer
}

func (d *Decoder) float() float64 {
	lit, _ := d.number()
	if d.fail {
		return 0
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		d.fail = true
	}
	return f
}

// int decodes an integer that fits in an int64.
func (d *Decoder) int() int64 {
	lit, integer := d.number()
	if d.fail || !integer {
		d.fail = true
		return 0
	}
	n, err := strconv.ParseInt(string(lit), 10, 64)
	if err != nil {
		d.fail = true
	}
	return n
}

// uint decodes an unsigned integer of the given size in bits.
func (d *Decoder) uint(bits int) uint64 {
	lit, integer := d.number()
	if d.fail || !integer {
		d.fail = true
		return 0
	}
	n, err := strconv.ParseUint(string(lit), 10, bits)
	if err != nil {
		d.fail = true
	}
	return n
}
