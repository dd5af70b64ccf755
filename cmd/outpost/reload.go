package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outposthq/outpost/checks"
)

// reloads reloads a process's configuration on SIGHUP and on POST
// /-/reload: the files are loaded and validated first (needing what the
// process needs), and a configuration that fails either, or that apply
// refuses, is logged and refused while the running one stays. Its
// metrics are Prometheus's: outpost_config_last_reload_successful and
// outpost_config_last_reload_success_timestamp_seconds.
type reloads struct {
	files []string
	needs checks.Needs
	e     env
	log   *slog.Logger
	// apply puts a loaded configuration in force and returns how many
	// checks it runs.
	apply func(*checks.Config) (int, error)

	mu          sync.Mutex // serialises reloads
	successful  prometheus.Gauge
	successTime prometheus.Gauge
}

func newReloads(reg prometheus.Registerer, files []string, needs checks.Needs, e env, log *slog.Logger, apply func(*checks.Config) (int, error)) (*reloads, error) {
	r := &reloads{
		files: files, needs: needs, e: e, log: log, apply: apply,
		successful: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outpost_config_last_reload_successful",
			Help: "1 if the last configuration reload (SIGHUP or POST /-/reload) succeeded, 0 if it was refused and the previous configuration still runs.",
		}),
		successTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outpost_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration in force was loaded: at the start, then at the last successful reload (Unix seconds).",
		}),
	}
	for _, c := range []prometheus.Collector{r.successful, r.successTime} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	r.successful.Set(1)
	r.successTime.SetToCurrentTime()
	return r, nil
}

// reload loads and applies the configuration files again.
func (r *reloads) reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg, err := checks.LoadFor(r.files, r.e.lookup, r.needs)
	if err == nil {
		var n int
		if n, err = r.apply(cfg); err == nil {
			r.successful.Set(1)
			r.successTime.SetToCurrentTime()
			r.log.Info("configuration reloaded", "checks", n, "digest", cfg.Digest)
			return nil
		}
	}
	r.successful.Set(0)
	r.log.Error("reload failed; keeping the running configuration", "err", err)
	return err
}

// signal is the SIGHUP handler.
func (r *reloads) signal() { _ = r.reload() }

// handler serves POST /-/reload: from a loopback address, or over TLS
// from a client whose certificate the server verified (--tls-client-ca).
// Anyone else is answered 403: a reload costs a load of every file and
// may resolve incidents. The answer says why a reload was refused; the
// loader's errors never carry a secret's value.
func (r *reloads) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !mayReload(req) {
			http.Error(w, "reload is allowed from a loopback address, or with a client certificate when the server requires one (--tls-client-ca)", http.StatusForbidden)
			return
		}
		if err := r.reload(); err != nil {
			http.Error(w, fmt.Sprintf("reload refused; the running configuration stays:\n%v", err), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "reloaded")
	})
}

// mayReload reports whether req may reload the configuration.
func mayReload(req *http.Request) bool {
	if req.TLS != nil && len(req.TLS.VerifiedChains) > 0 {
		return true
	}
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
