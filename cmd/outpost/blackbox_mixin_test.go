package main

// blackboxMixinQueries are the PromQL queries of the blackbox-exporter-mixin
// (https://github.com/adinhodovic/blackbox-exporter-mixin, Apache-2.0,
// dashboards/dashboards.libsonnet and alerts/alerts.libsonnet, with its
// default selector job="blackbox-exporter", 30 days and 21 days), quoted
// as fixtures: the "Blackbox dashboards" recipe of docs/deploy.md must make
// them work on Outpost's series. Grafana's $job and $instance are
// substituted by the test; thresholds of the alerts are kept.
var blackboxMixinQueries = []struct{ where, expr string }{
	{"variable job", `count by (job) (probe_success{})`},
	{"variable instance", `count by (instance) (probe_success{job=~"$job"})`},
	{"Status Map", `max by (instance) (probe_success{job=~"$job"})`},
	{"Probes", `count(probe_success{job=~"$job"})`},
	{"Probes Success", `(count(probe_success{job=~"$job"} == 1) OR vector(0)) / count(probe_success{job=~"$job"})`},
	{"Probes SSL", `count(probe_http_ssl{job=~"$job"} == 1) / count(probe_http_version{job=~"$job"})`},
	{"Probe Average Duration", `avg(probe_duration_seconds{job=~"$job"})`},
	{"Uptime", `max by (instance) (probe_success{job=~"$job", instance=~"$instance"})`},
	{"Uptime 30d", `avg_over_time(probe_success{job=~"$job", instance=~"$instance"}[30d])`},
	{"Latest Response Code", `max by (instance) (probe_http_status_code{job=~"$job", instance=~"$instance"})`},
	{"SSL", `max by (instance) (probe_http_ssl{job=~"$job", instance=~"$instance"})`},
	{"SSL Version", `max by (instance,version) (probe_tls_version_info{job=~"$job", instance=~"$instance"})`},
	{"Redirects", `max by (intance) (probe_http_redirects{job=~"$job", instance=~"$instance"})`},
	{"HTTP Version", `max by (instance) (probe_http_version{job=~"$job", instance=~"$instance"})`},
	{"SSL Certificate Expiry", `min by (instance) (probe_ssl_earliest_cert_expiry{job=~"$job", instance=~"$instance"} - time())`},
	{"Average Latency", `avg by (instance) (probe_duration_seconds{job=~"$job", instance=~"$instance"})`},
	{"Average DNS Lookup", `avg by (instance) (probe_dns_lookup_time_seconds{job=~"$job", instance=~"$instance"})`},
	{"Probe Duration: HTTP duration", `sum(probe_http_duration_seconds{job=~"$job", instance=~"$instance"}) by (instance)`},
	{"Probe Duration: total", `sum(probe_duration_seconds{job=~"$job", instance=~"$instance"}) by (instance)`},
	{"Probe Phases: HTTP", `sum(probe_http_duration_seconds{job=~"$job", instance=~"$instance"}) by (phase)`},
	{"Probe Phases: ICMP", `sum(probe_icmp_duration_seconds{job=~"$job", instance=~"$instance"}) by (phase)`},
	// The alerts' conditions are false on a healthy probe; what they
	// compare must exist.
	{"alert BlackboxProbeFailed", `probe_success{job="blackbox-exporter"}`},
	{"alert BlackboxLowUptime30d", `avg_over_time(probe_success{job="blackbox-exporter"}[30d]) * 100`},
	{"alert BlackboxSslCertificateWillExpireSoon", `probe_ssl_earliest_cert_expiry{job="blackbox-exporter"} - time()`},
}
