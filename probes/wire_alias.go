package probes

import (
	"time"

	"github.com/outposthq/outpost/probes/wire"
)

// Temporary aliases while the users of the wire types move to package wire;
// the next commit rewrites them and deletes this file.

type (
	Batch           = wire.Batch
	Result          = wire.Result
	Phases          = wire.Phases
	Observed        = wire.Observed
	DNSObservation  = wire.DNSObservation
	TLSObservation  = wire.TLSObservation
	StepObservation = wire.StepObservation
	ConfirmRequest  = wire.ConfirmRequest
)

const (
	WireVersion     = wire.WireVersion
	MaxBatchBytes   = wire.MaxBatchBytes
	MaxBatchResults = wire.MaxBatchResults
	MaxClockSkew    = wire.MaxClockSkew
	HeaderRegion    = wire.HeaderRegion
	HeaderAgent     = wire.HeaderAgent
	HeaderTimestamp = wire.HeaderTimestamp
	HeaderSignature = wire.HeaderSignature
	ResultsPath     = wire.ResultsPath
	ConfirmPath     = wire.ConfirmPath
)

var (
	PhaseNames      = wire.PhaseNames
	ErrBadSignature = wire.ErrBadSignature
	ErrClockSkew    = wire.ErrClockSkew
)

func Sign(key []byte, ts time.Time, body []byte) (timestamp, signature string) {
	return wire.Sign(key, ts, body)
}

func Verify(keys [][]byte, timestamp, signature string, body []byte, now time.Time) error {
	return wire.Verify(keys, timestamp, signature, body, now)
}

func ConfirmPayload(region, agent string) []byte { return wire.ConfirmPayload(region, agent) }
