package checks

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// AlertmanagerNotifier posts Outpost's incidents to the Alertmanager API
// (POST URL/api/v2/alerts) of every Alertmanager in URLs, as Prometheus
// does, and re-posts the firing ones every Resend so that Alertmanager,
// which resolves an alert whose endsAt passes without an update, keeps
// them active.
type AlertmanagerNotifier struct {
	// URLs are the Alertmanagers' base URLs ("http://alertmanager:9093",
	// or with the path prefix of one behind a proxy). Every alert goes to
	// every one of them.
	URLs []string `yaml:"urls"`
	// BasicAuth authenticates to the Alertmanagers (or a proxy in front
	// of them); not with BearerToken.
	BasicAuth *BasicAuth `yaml:"basic_auth"`
	// BearerToken is sent as "Authorization: Bearer TOKEN"; not with
	// BasicAuth.
	BearerToken Secret `yaml:"bearer_token"`
	// Resend is how often the firing alerts are posted again; each post
	// says endsAt = now + 4 × Resend, as Prometheus does. Default 1m
	// (DefaultAlertmanagerResend).
	Resend time.Duration `yaml:"resend"`
	// Timeout bounds one post to one Alertmanager; default 10s.
	Timeout time.Duration `yaml:"timeout"`
	Src     Source
}

// DefaultAlertmanagerResend is the default re-send interval of firing
// alerts: Prometheus's own (--rules.alert.resend-delay).
const DefaultAlertmanagerResend = time.Minute

// Bounds of an alertmanager notifier's settings.
const (
	maxAlertmanagerURLs = 16
	minResend           = time.Second
	maxResend           = time.Hour
	maxNotifierTimeout  = 2 * time.Minute
)

func validateAlertmanager(a *AlertmanagerNotifier, label string, errs *errorList) {
	if len(a.URLs) == 0 {
		errs.add(a.Src.At("urls"), "", "%s: alertmanager.urls is required, such as urls: [http://alertmanager:9093]", label)
	} else if len(a.URLs) > maxAlertmanagerURLs {
		errs.add(a.Src.At("urls"), "", "%s: alertmanager.urls: %d URLs is more than the limit of %d", label, len(a.URLs), maxAlertmanagerURLs)
	}
	fromEnv := a.Src.fromEnv("urls")
	for i, u := range a.URLs {
		at := a.Src.At(fmt.Sprintf("urls[%d]", i))
		if msg := checkURL(u, fromEnv); msg != "" {
			errs.add(at, "", "%s: alertmanager.urls[%d] %s", label, i, msg)
		} else if strings.Contains(u, "/api/v") {
			errs.add(at, "", "%s: alertmanager.urls[%d]: give the base URL; alerts go to URL/api/v2/alerts", label, i)
		} else if slices.Index(a.URLs, u) < i {
			errs.add(at, "", "%s: alertmanager.urls[%d] is listed twice", label, i)
		}
	}
	if a.BasicAuth != nil {
		if a.BasicAuth.Username == "" {
			errs.add(a.BasicAuth.Src.Pos, "", "%s: alertmanager.basic_auth.username is required", label)
		}
		if !a.BearerToken.IsZero() || a.Src.Has("bearer_token") {
			errs.add(a.Src.At("bearer_token"), "", "%s: alertmanager: use basic_auth or bearer_token, not both", label)
		}
	}
	if !a.Src.Has("resend") {
		a.Resend = DefaultAlertmanagerResend
	} else if a.Resend < minResend || a.Resend > maxResend {
		errs.add(a.Src.At("resend"), "", "%s: alertmanager.resend %s must be between %s and %s", label, a.Resend, minResend, maxResend)
	}
	if a.Src.Has("timeout") && (a.Timeout <= 0 || a.Timeout > maxNotifierTimeout) {
		errs.add(a.Src.At("timeout"), "", "%s: alertmanager.timeout %s must be above 0 and at most %s", label, a.Timeout, maxNotifierTimeout)
	}
}
