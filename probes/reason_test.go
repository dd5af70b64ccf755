package probes

import (
	"strings"
	"testing"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// A secret that a long reason would cut in two must still be redacted:
// redaction runs before the reason is cut to wire.MaxReasonBytes.
func TestFinishRedactsBeforeCutting(t *testing.T) {
	const secret = "s3cr3t-t0ken-0123456789abcdef"
	redact := checks.NewRedactor([]string{secret})
	b := base{check: &checks.Check{ID: "c"}, opts: Options{Redact: redact}}
	b.opts.fill()
	// The secret straddles byte wire.MaxReasonBytes-3 of the joined reason.
	first := strings.Repeat("x", wire.MaxReasonBytes-20)
	var r wire.Result
	got := b.finish(&r, r.Time, []string{first, "echo " + secret}, "")
	if strings.Contains(got.Reason, secret[:6]) {
		t.Fatalf("part of the secret survived in %q", got.Reason[len(got.Reason)-40:])
	}
	if len(got.Reason) > wire.MaxReasonBytes {
		t.Errorf("reason is %d bytes, want at most %d", len(got.Reason), wire.MaxReasonBytes)
	}
}
