// Package bus is Outpost's side of NATS JetStream: the subjects and headers
// agents and evaluators agree on, the connection both make from the
// configuration's bus block, and the stream and buckets the evaluators keep
// (see docs/scale.md).
//
// Subjects:
//
//	outpost.results.<shard>.<region>   a signed batch of one region's results, all of one shard
//	outpost.live.<region>              a signed empty batch: an agent's liveness, read by every evaluator
//	outpost.confirm.<region>           an evaluator's confirmation request to the region's agents (core NATS)
//
// The region is the last token so that NATS permissions can confine an
// agent to its own region: publish outpost.results.*.<region> and
// outpost.live.<region>, subscribe outpost.confirm.<region>.
//
// A message carries the HTTP form's authentication as headers
// (wire.HeaderRegion, HeaderAgent, HeaderTimestamp, HeaderSignature, signed
// over the body exactly as over HTTP) and Nats-Msg-Id "<region>.<agent>.<seq>",
// so that JetStream's duplicate window drops a re-send.
package bus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/outposthq/outpost/checks"
)

// Subject prefixes.
const (
	ResultsPrefix = "outpost.results."
	LivePrefix    = "outpost.live."
	ConfirmPrefix = "outpost.confirm."
)

// Timeouts of the calls to NATS.
const (
	// ConnectTimeout bounds a dial and its handshake.
	ConnectTimeout = 5 * time.Second
	// RequestTimeout bounds one JetStream API call or publish
	// acknowledgement.
	RequestTimeout = 10 * time.Second
)

// ResultsSubject is the subject of region's results of shard.
func ResultsSubject(shard int, region string) string {
	return ResultsPrefix + strconv.Itoa(shard) + "." + region
}

// ShardFilter is the filter subject of every region's results of shard.
func ShardFilter(shard int) string { return ResultsPrefix + strconv.Itoa(shard) + ".*" }

// LiveSubject is the subject of region's liveness messages.
func LiveSubject(region string) string { return LivePrefix + region }

// ConfirmSubject is the subject of confirmation requests for region.
func ConfirmSubject(region string) string { return ConfirmPrefix + region }

// MsgID is the Nats-Msg-Id of an agent's batch seq.
func MsgID(region, agent string, seq uint64) string {
	return region + "." + agent + "." + strconv.FormatUint(seq, 10)
}

// ParseSubject returns the shard (-1 for a liveness message) and region of
// a results or liveness subject, and false for any other.
func ParseSubject(subject string) (shard int, region string, ok bool) {
	if rest, found := strings.CutPrefix(subject, LivePrefix); found {
		return -1, rest, rest != "" && !strings.Contains(rest, ".")
	}
	rest, found := strings.CutPrefix(subject, ResultsPrefix)
	if !found {
		return 0, "", false
	}
	s, region, found := strings.Cut(rest, ".")
	if !found || region == "" || strings.Contains(region, ".") {
		return 0, "", false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n >= checks.MaxShards {
		return 0, "", false
	}
	return n, region, true
}

// Connect dials the bus named by n as client name (shown in the server's
// connection list), and reconnects forever. When no server answers at
// first, it returns a connection that keeps trying (publishes fail until
// then); when a server refuses the credentials or TLS, it returns the
// error. Connection events are logged without credentials.
func Connect(n *checks.NATSBus, name string, log *slog.Logger) (*nats.Conn, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.Timeout(ConnectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ReconnectJitter(500*time.Millisecond, 2*time.Second),
		nats.PingInterval(20 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("bus: disconnected; reconnecting", "err", redact(err, n))
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("bus: reconnected", "server", c.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("bus: asynchronous error", "err", redact(err, n))
		}),
	}
	switch {
	case n.User != "":
		opts = append(opts, nats.UserInfo(n.User, n.Password.Value()))
	case n.Token.Value() != "":
		opts = append(opts, nats.Token(n.Token.Value()))
	case n.CredsFile != "":
		opts = append(opts, nats.UserCredentials(n.CredsFile))
	}
	if n.TLS != nil {
		cfg, err := tlsConfig(n.TLS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Secure(cfg))
	}
	nc, err := nats.Connect(n.URL, opts...)
	if err != nil && !refused(err) {
		// The bus is down or unreachable: start anyway and connect when
		// it is back. A process that exits here would crash-loop through
		// a NATS outage, and an agent's spool exists for exactly this.
		log.Warn("bus: unreachable; running without it and retrying", "url", redactURL(n.URL), "err", redact(err, n))
		nc, err = nats.Connect(n.URL, append(opts, nats.RetryOnFailedConnect(true),
			nats.ConnectHandler(func(c *nats.Conn) { log.Info("bus: connected", "server", c.ConnectedUrlRedacted()) }))...)
	}
	if err != nil {
		return nil, fmt.Errorf("bus: connect to %s: %w", redactURL(n.URL), redact(err, n))
	}
	return nc, nil
}

// refused reports whether err is the bus refusing this process (its
// credentials or TLS), which retrying does not mend: a configuration
// error to report at once.
func refused(err error) bool {
	var tlsErr *tls.CertificateVerificationError
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) ||
		errors.Is(err, nats.ErrNoServers) && strings.Contains(err.Error(), "authorization") ||
		errors.As(err, &tlsErr) || errors.Is(err, nats.ErrSecureConnRequired) || errors.Is(err, nats.ErrSecureConnWanted)
}

func tlsConfig(t *checks.BusTLS) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("bus: tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("bus: tls.ca_file %s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("bus: tls client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// redact removes the configured secrets from err's text: NATS errors may
// quote what the server was sent.
func redact(err error, n *checks.NATSBus) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range []string{n.Password.Value(), n.Token.Value()} {
		if len(s) >= 4 && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "<secret>")
		}
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}

// redactURL drops any userinfo from a list of URLs (validation refuses it,
// but a hand-built config may carry it).
func redactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if scheme := strings.Index(p, "://"); scheme >= 0 && scheme < at {
				parts[i] = p[:scheme+3] + "<redacted>" + p[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}

// StreamConfig is the results stream n describes: every results and
// liveness subject, on file, bounded by age and bytes, oldest dropped
// first, with n's duplicate window.
func StreamConfig(n *checks.NATSBus) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        n.Stream,
		Description: "Outpost results and agent liveness",
		Subjects:    []string{ResultsPrefix + ">", LivePrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      n.Retention,
		MaxBytes:    int64(n.MaxBytes),
		MaxMsgSize:  int32(maxMsgSize),
		Duplicates:  n.Duplicates,
		Replicas:    n.Replicas,
	}
}

// maxMsgSize is the largest message: a batch at its limit plus headers.
const maxMsgSize = 1<<20 + 4<<10

// EnsureStream creates the results stream, or updates it to n's limits.
// Evaluators call it; agents only publish.
func EnsureStream(ctx context.Context, js jetstream.JetStream, n *checks.NATSBus) (jetstream.Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	s, err := js.CreateOrUpdateStream(ctx, StreamConfig(n))
	if err != nil {
		return nil, fmt.Errorf("bus: stream %s: %w", n.Stream, err)
	}
	return s, nil
}

// StatesBucket is the name of the key-value bucket of per-check states
// that every evaluator writes its checks into and reads the others' from.
func StatesBucket(n *checks.NATSBus) string { return n.Stream + "_checks" }

// IncidentsBucket is the name of the key-value bucket of per-check
// decision state (open incidents, failing regions): written by a check's
// owners, read by the evaluator a reload hands the check to, so that an
// open incident moves with it.
func IncidentsBucket(n *checks.NATSBus) string { return n.Stream + "_incidents" }

// ConsumerName is the durable consumer of evaluator name.
func ConsumerName(name string) string { return "outpost-" + name }
