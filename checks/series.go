package checks

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// SeriesSpec is a series check: it reads one number per interval, such as
// requests per second, from a Prometheus server or a JSON endpoint. The
// probe fails when the number cannot be read; the number itself is judged
// by the shape detectors (spike, drop, recurring) against what is usual
// for the time of day.
type SeriesSpec struct {
	Prometheus *PrometheusSeries `yaml:"prometheus"`
	HTTP       *HTTPSeries       `yaml:"http"`
	Src        Source
}

// PrometheusSeries is an instant query whose result must be one number: a
// scalar, or a vector of exactly one sample (wrap the expression in sum()
// when in doubt).
type PrometheusSeries struct {
	// URL is the server's base URL, such as http://prometheus:9090.
	URL   string `yaml:"url"`
	Query string `yaml:"query"`
	// BearerToken is sent as "Authorization: Bearer"; from the environment.
	BearerToken Secret `yaml:"bearer_token"`
	Src         Source
}

// HTTPSeries GETs a JSON document and takes the number at JSON.
type HTTPSeries struct {
	URL         string            `yaml:"url"`
	JSON        JSONPath          `yaml:"json"`
	Headers     map[string]string `yaml:"headers"`
	BearerToken Secret            `yaml:"bearer_token"`
	Src         Source
}

func validateSeries(c *Check, id string, errs *errorList) {
	s := c.Series
	switch {
	case s.Prometheus == nil && s.HTTP == nil:
		errs.add(s.Src.Pos, id, "series: set prometheus: {url, query} or http: {url, json}")
		return
	case s.Prometheus != nil && s.HTTP != nil:
		errs.add(s.Src.At("http"), id, "series: has both prometheus and http; use one")
		return
	}
	if p := s.Prometheus; p != nil {
		add := blockAdder(&p.Src, id, "series.prometheus.", errs)
		switch {
		case !p.Src.Has("url"):
			errs.add(p.Src.Pos, id, "series.prometheus: url is required, such as http://prometheus:9090")
		default:
			if msg := checkURL(p.URL, p.Src.fromEnv("url")); msg != "" {
				add("url", "%s", msg)
			}
		}
		if strings.TrimSpace(p.Query) == "" {
			errs.add(p.Src.At("query"), id, "series.prometheus: query is required, such as sum(rate(http_requests_total[5m]))")
		}
		return
	}
	h := s.HTTP
	add := blockAdder(&h.Src, id, "series.http.", errs)
	if !h.Src.Has("url") {
		errs.add(h.Src.Pos, id, "series.http: url is required")
	} else if msg := checkURL(h.URL, h.Src.fromEnv("url")); msg != "" {
		add("url", "%s", msg)
	}
	if h.JSON.IsZero() {
		errs.add(h.Src.At("json"), id, "series.http: json is required: the path of the number, such as $.requests_per_second")
	}
	for _, k := range slices.Sorted(maps.Keys(h.Headers)) {
		if !headerKeyRE.MatchString(k) {
			errs.add(h.Src.At("headers."+k), id, "series.http.headers: header name %q is not a valid HTTP token", k)
		}
		if http.CanonicalHeaderKey(k) == "Authorization" && h.Src.Has("bearer_token") {
			errs.add(h.Src.At("headers."+k), id, "series.http.headers: Authorization is set twice, here and by bearer_token")
		}
	}
}

// SeriesSource describes where a series check reads from, for reasons and
// the status page. It never includes a credential.
func (s *SeriesSpec) SeriesSource() string {
	if s.Prometheus != nil {
		return fmt.Sprintf("prometheus %s", s.Prometheus.Query)
	}
	return fmt.Sprintf("%s at %s", s.HTTP.JSON, s.HTTP.URL)
}
