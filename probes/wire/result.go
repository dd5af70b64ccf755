// Package wire is the contract between agents and evaluators: the Result of
// a probe, the Batch an agent posts, the limits both sides respect, the
// headers and HMAC signature that authenticate a batch, the strict, fast
// Decoder an evaluator reads batches with, and Clip with MaxReasonBytes,
// the one way text that travels in results is shortened.
//
// Both sides import it (the agent under probes/, the evaluator under
// alerting/), so it imports nothing of Outpost's: the standard library only.
package wire

import (
	"time"
)

// WireVersion is the version of the Result wire format.
const WireVersion = 1

// Result is the outcome of one probe of one check from one region. It is the
// wire format between agents and evaluators and the JSON line printed by
// "outpost check --format json"; field names are a contract.
type Result struct {
	V        int       `json:"v"`
	Check    string    `json:"check"`
	Type     string    `json:"type"`
	Region   string    `json:"region"`
	Agent    string    `json:"agent,omitempty"`
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"` // when the probe started
	OK       bool      `json:"ok"`
	Reason   string    `json:"reason"`
	Duration float64   `json:"duration_seconds"`
	Phases   Phases    `json:"phases"`
	Observed Observed  `json:"observed"`
	// Confirm marks a run an evaluator asked for out of schedule, to
	// confirm another region's failure (a second opinion).
	Confirm bool `json:"confirm,omitempty"`
}

// Phases are the seconds spent in each phase of a probe. The names follow
// blackbox_exporter's probe_http_duration_seconds{phase}: resolve is DNS,
// processing is from the request written to the first response byte.
type Phases struct {
	Resolve    float64 `json:"resolve"`
	Connect    float64 `json:"connect"`
	TLS        float64 `json:"tls"`
	Processing float64 `json:"processing"`
	Transfer   float64 `json:"transfer"`
}

// Add accumulates o into p, for redirects and steps that open several
// connections within one probe.
func (p *Phases) Add(o Phases) {
	p.Resolve += o.Resolve
	p.Connect += o.Connect
	p.TLS += o.TLS
	p.Processing += o.Processing
	p.Transfer += o.Transfer
}

// PhaseNames lists the phases in the order of a request.
var PhaseNames = [...]string{"resolve", "connect", "tls", "processing", "transfer"}

// Values returns the phases in PhaseNames order.
func (p Phases) Values() [len(PhaseNames)]float64 {
	return [...]float64{p.Resolve, p.Connect, p.TLS, p.Processing, p.Transfer}
}

// Observed is what a probe saw, structured so that an evaluator can compare
// regions: which addresses a name resolved to, which one was reached, what
// answered.
type Observed struct {
	// ResolvedIPs are the addresses the target's host resolved to.
	ResolvedIPs []string `json:"resolved_ips,omitempty"`
	// ConnectedAddr is the ip:port the probe connected to.
	ConnectedAddr string `json:"connected_addr,omitempty"`
	StatusCode    int    `json:"status_code,omitempty"`
	HTTPVersion   string `json:"http_version,omitempty"`
	Redirects     int    `json:"redirects,omitempty"`
	BodyBytes     int64  `json:"body_bytes,omitempty"`
	// Headers holds the response headers named in expect.headers, so that
	// the evidence of which tier answered travels with the result.
	Headers map[string]string `json:"headers,omitempty"`
	TLS     *TLSObservation   `json:"tls,omitempty"`
	Steps   []StepObservation `json:"steps,omitempty"`
	// Line is the first line a TCP server sent, truncated.
	Line string `json:"line,omitempty"`
	// DNS holds one entry per DNS server a dns check asked.
	DNS []DNSObservation `json:"dns,omitempty"`
	// Value is the number a series check read; nil when it read none.
	Value *float64 `json:"value,omitempty"`
}

// DNSObservation is what one DNS server answered. It is structured so that
// an evaluator can compare servers and regions without parsing reasons.
type DNSObservation struct {
	// Resolver is the entry of the check's resolvers list this server came
	// from: "system", "authoritative" or the configured address.
	Resolver string `json:"resolver"`
	// Server is the ip:port asked.
	Server string `json:"server"`
	// NS is the name server's name, for authoritative servers.
	NS        string `json:"ns,omitempty"`
	Transport string `json:"transport,omitempty"`
	Rcode     string `json:"rcode,omitempty"`
	// Authoritative is the AA bit of the response.
	Authoritative bool `json:"aa"`
	// Answers are the normalised answer records, sorted.
	Answers []string `json:"answers"`
	// MinTTL is the lowest TTL among the answer records.
	MinTTL uint32 `json:"min_ttl"`
	// CNAMEs is the chain followed from the queried name, in order.
	CNAMEs []string `json:"cnames,omitempty"`
	RTT    float64  `json:"rtt_seconds"`
	// Error says why there is no usable answer, if there is none.
	Error string `json:"error,omitempty"`
}

// TLSObservation describes the TLS session of a probe.
type TLSObservation struct {
	Version    string `json:"version"`
	ServerName string `json:"server_name,omitempty"`
	// NotAfter is the earliest expiry among the certificates the server
	// presented (blackbox_exporter's probe_ssl_earliest_cert_expiry).
	NotAfter time.Time `json:"not_after"`
	// Subject and Issuer are the common names of the leaf certificate's
	// subject and issuer.
	Subject string `json:"subject,omitempty"`
	Issuer  string `json:"issuer,omitempty"`
	// SANs are the leaf certificate's DNS names and IP addresses, at most
	// MaxSANs of them, for a human to know which certificate it is.
	SANs []string `json:"sans,omitempty"`
	// Serial is the leaf certificate's serial number in hex, and
	// Fingerprint the SHA-256 of its DER encoding in hex: with NotAfter
	// they tell one certificate from its renewal, so that an evaluator
	// warns about each certificate once.
	Serial      string `json:"serial,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

// MaxSANs is how many names of a certificate an agent reports.
const MaxSANs = 16

// StepObservation is what one step of a multi-step HTTP check saw.
type StepObservation struct {
	Name       string  `json:"name"`
	OK         bool    `json:"ok"`
	StatusCode int     `json:"status_code,omitempty"`
	Duration   float64 `json:"duration_seconds"`
	Reason     string  `json:"reason,omitempty"`
}
