package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Batch is what an agent POSTs to an evaluator's /v1/results: the results
// of one agent, in order, under one sequence number. An empty batch is the
// agent's heartbeat.
type Batch struct {
	V      int    `json:"v"`
	Agent  string `json:"agent"`
	Region string `json:"region"`
	// Seq increases with every batch an agent seals, across restarts (it
	// starts from the wall clock in nanoseconds). Evaluators use it to
	// apply a batch once and to refuse replays.
	Seq uint64 `json:"seq"`
	// ConfigDigest identifies the configuration the agent runs
	// (checks.Config.Digest), so that drift between agents and evaluators
	// is visible.
	ConfigDigest string    `json:"config_digest"`
	Created      time.Time `json:"created"`
	Results      []Result  `json:"results"`
}

// Wire limits, enforced by the evaluator and respected by the agent.
const (
	// MaxBatchBytes bounds a request body.
	MaxBatchBytes = 4 << 20
	// MaxBatchResults bounds the results in one batch.
	MaxBatchResults = 1000
	// MaxClockSkew is how far a request's signing time may be from the
	// evaluator's clock.
	MaxClockSkew = 5 * time.Minute
)

// HTTP headers that carry a batch's authentication.
const (
	HeaderRegion    = "X-Outpost-Region"
	HeaderAgent     = "X-Outpost-Agent"
	HeaderTimestamp = "X-Outpost-Timestamp"
	HeaderSignature = "X-Outpost-Signature"
	// HeaderEvaluator is set on every answer an evaluator itself gives to
	// a batch, so that an agent can tell an evaluator that is there but
	// busy (503) from a proxy or load balancer that found none.
	HeaderEvaluator = "X-Outpost-Evaluator"
	// signaturePrefix versions the signature scheme.
	signaturePrefix = "v1="
	// ResultsPath is where evaluators accept batches.
	ResultsPath = "/v1/results"
)

// Sign returns the signature header value for body sent at ts:
// "v1=" + hex(HMAC-SHA256(key, ts + "." + body)), ts in Unix seconds. The
// agent signs at every send, not when the batch is sealed, so a batch kept
// in the spool through a long outage is still inside the skew window when
// it is finally delivered.
func Sign(key []byte, ts time.Time, body []byte) (timestamp, signature string) {
	timestamp = strconv.FormatInt(ts.Unix(), 10)
	return timestamp, signaturePrefix + hex.EncodeToString(mac(key, timestamp, body))
}

func mac(key []byte, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Errors Verify returns; evaluators answer all of them with 401.
var (
	errBadSignature = errors.New("signature does not match")
	errClockSkew    = errors.New("timestamp outside the allowed clock skew")
)

// Verify checks a signature made by Sign with any of keys, and that the
// signing time is within MaxClockSkew of now. It compares in constant time.
func Verify(keys [][]byte, timestamp, signature string, body []byte, now time.Time) error {
	secs, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s is not a Unix time", errBadSignature, HeaderTimestamp)
	}
	if skew := now.Sub(time.Unix(secs, 0)); skew > MaxClockSkew || skew < -MaxClockSkew {
		return fmt.Errorf("%w: %s off", errClockSkew, skew.Round(time.Second))
	}
	got, err := hex.DecodeString(strings.TrimPrefix(signature, signaturePrefix))
	if err != nil || !strings.HasPrefix(signature, signaturePrefix) {
		return fmt.Errorf("%w: malformed %s", errBadSignature, HeaderSignature)
	}
	for _, k := range keys {
		if hmac.Equal(got, mac(k, timestamp, body)) {
			return nil
		}
	}
	return errBadSignature
}

// ConfirmPath is where agents long-poll an evaluator for confirmation
// requests: checks the evaluator wants run at once because another region
// just saw them fail.
const ConfirmPath = "/v1/confirm"

// ConfirmPayload is what an agent signs for a confirmation long-poll, in
// place of a body.
func ConfirmPayload(region, agent string) []byte {
	return []byte("GET " + ConfirmPath + "\n" + region + "\n" + agent)
}

// ConfirmRequest is an evaluator's answer to a confirmation long-poll.
type ConfirmRequest struct {
	Checks []string `json:"checks"`
	// Runs says, for a check of Checks that needs more than one, how many
	// runs back to back the region should make: as many as the check's
	// failure rule needs to trip, so that an outage seen everywhere
	// reaches quorum in one probe timeout rather than one interval later.
	// A check missing here is run once (what agents that predate Runs do
	// for every check).
	Runs map[string]int `json:"runs,omitempty"`
}

// MaxConfirmRuns bounds ConfirmRequest.Runs: an agent runs a check at most
// this many times back to back for one request.
const MaxConfirmRuns = 10

// RunsOf is how many runs r asks for check: Runs[check] within
// [1, MaxConfirmRuns], 1 when unset.
func (r ConfirmRequest) RunsOf(check string) int {
	return min(max(r.Runs[check], 1), MaxConfirmRuns)
}
