package checks

import (
	"cmp"
	"fmt"
	"net/url"
	"strings"
)

// Target says in one line what the check probes, for a page: "GET
// https://www.example.com/", "tcp db.example.com:5432", "dns A
// www.example.com via system, 9.9.9.9:53". A URL loses its user and
// password. Values from ${ENV} are still in it: pass it through
// Config.Redactor before it leaves the process. A heartbeat has no target
// ("").
func (c *Check) Target() string {
	switch {
	case c.HTTP != nil:
		r, more := c.HTTP.HTTPRequest, 0
		if len(c.HTTP.Steps) > 0 {
			r, more = c.HTTP.Steps[0].HTTPRequest, len(c.HTTP.Steps)-1
		}
		t := cmp.Or(strings.ToUpper(r.Method), "GET") + " " + withoutUser(r.URL)
		if more > 0 {
			t += fmt.Sprintf(" (+%d more steps)", more)
		}
		return t
	case c.TCP != nil:
		return "tcp " + c.TCP.Address
	case c.TLS != nil:
		if c.TLS.ServerName != "" {
			return "tls " + c.TLS.Address + " (" + c.TLS.ServerName + ")"
		}
		return "tls " + c.TLS.Address
	case c.DNS != nil:
		t := "dns " + cmp.Or(c.DNS.Type, "A") + " " + c.DNS.Name
		if len(c.DNS.Resolvers) > 0 {
			t += " via " + strings.Join(c.DNS.Resolvers, ", ")
		}
		return t
	case c.Series != nil && c.Series.Prometheus != nil:
		return "prometheus " + withoutUser(c.Series.Prometheus.URL) + " " + c.Series.Prometheus.Query
	case c.Series != nil && c.Series.HTTP != nil:
		return "GET " + withoutUser(c.Series.HTTP.URL)
	}
	return ""
}

// withoutUser is raw without the user information a URL may carry.
func withoutUser(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}
