package wire

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// signatureLen is the length of a well-formed signature header: the
// prefix and a hex HMAC-SHA256.
const signatureLen = len(signaturePrefix) + 2*32

// CheckHeaders is what Verify checks of a request before its body has
// arrived: that timestamp is a Unix time within MaxClockSkew of now and
// that signature is well-formed. An evaluator calls it before it reads (and
// allocates for) a body; a request it refuses can never pass Verify.
func CheckHeaders(timestamp, signature string, now time.Time) error {
	secs, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s is not a Unix time", errBadSignature, HeaderTimestamp)
	}
	if skew := now.Sub(time.Unix(secs, 0)); skew > MaxClockSkew || skew < -MaxClockSkew {
		return fmt.Errorf("%w: %s off", errClockSkew, skew.Round(time.Second))
	}
	if len(signature) != signatureLen || signature[:len(signaturePrefix)] != signaturePrefix {
		return fmt.Errorf("%w: malformed %s", errBadSignature, HeaderSignature)
	}
	var sum [32]byte
	if _, err := hex.Decode(sum[:], []byte(signature[len(signaturePrefix):])); err != nil {
		return fmt.Errorf("%w: malformed %s", errBadSignature, HeaderSignature)
	}
	return nil
}
