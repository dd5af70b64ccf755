package wire

import (
	"errors"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	key, other := []byte("key-one"), []byte("key-two")
	body := []byte(`{"v":1}`)
	now := time.Unix(1_800_000_000, 0)
	ts, sig := Sign(key, now, body)

	tests := []struct {
		name string
		keys [][]byte
		ts   string
		sig  string
		body []byte
		now  time.Time
		want error
	}{
		{"valid", [][]byte{key}, ts, sig, body, now, nil},
		{"second of two keys", [][]byte{other, key}, ts, sig, body, now, nil},
		{"wrong key", [][]byte{other}, ts, sig, body, now, errBadSignature},
		{"body changed", [][]byte{key}, ts, sig, []byte(`{"v":2}`), now, errBadSignature},
		{"timestamp changed", [][]byte{key}, "1800000001", sig, body, now, errBadSignature},
		{"no prefix", [][]byte{key}, ts, sig[3:], body, now, errBadSignature},
		{"garbage timestamp", [][]byte{key}, "soon", sig, body, now, errBadSignature},
		{"too old", [][]byte{key}, ts, sig, body, now.Add(MaxClockSkew + time.Second), errClockSkew},
		{"from the future", [][]byte{key}, ts, sig, body, now.Add(-MaxClockSkew - time.Second), errClockSkew},
		{"no keys", nil, ts, sig, body, now, errBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.keys, tc.ts, tc.sig, tc.body, tc.now)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}
