package checks

import (
	"errors"
	"reflect"
	"slices"

	"gopkg.in/yaml.v3"
)

// Needs says which secrets a process needs. One configuration serves every
// role, but each role holds only its own credentials: an agent has its
// region's key, an evaluator every agent key and the notifiers' secrets.
// A secret (a Secret field) whose ${VAR} is unset is an error only when the
// process needs it; the others are Missing. Every other ${VAR} must be set
// for every role. The zero Needs needs no secret.
type Needs struct {
	// AgentRegion, when set, needs the key of the agent that
	// Config.AgentKey(AgentRegion, AgentName) picks.
	AgentRegion, AgentName string
	// AgentKeys needs every agent's key: an evaluator verifies them all.
	AgentKeys bool
	// Notifiers needs every notifier's secrets.
	Notifiers bool
	// API needs the API token (api.token), when one is configured.
	API bool
	// Bus needs the NATS credentials (bus.nats), when a bus is configured.
	Bus bool
	// Checks, if set, needs the secrets of the checks it returns true for
	// (credentials to probe with, heartbeat tokens).
	Checks func(*Check) bool
}

// AllSecrets needs every secret: what Load and "outpost validate" check.
func AllSecrets() Needs {
	return Needs{AgentKeys: true, Notifiers: true, API: true, Bus: true, Checks: func(*Check) bool { return true }}
}

// AgentNeeds is what the agent of region named name needs: its own key and
// the credentials of the checks it probes. Not the notifiers' secrets: the
// agent pages by itself only through the notifiers it has them for (see
// Config.MissingNotifiers).
func AgentNeeds(region, name string) Needs {
	return Needs{AgentRegion: region, AgentName: name, Bus: true, Checks: func(c *Check) bool {
		return c.Heartbeat == nil && slices.Contains(c.Regions, region)
	}}
}

// EvaluatorNeeds is what an evaluator needs: every agent's key, the
// notifiers' secrets and the heartbeat checks' tokens (it serves their
// pings). It probes nothing, so not the other checks' credentials.
func EvaluatorNeeds() Needs {
	return Needs{AgentKeys: true, Notifiers: true, API: true, Bus: true, Checks: func(c *Check) bool { return c.Heartbeat != nil }}
}

// Union needs what either n or o needs.
func (n Needs) Union(o Needs) Needs {
	u := Needs{AgentRegion: n.AgentRegion, AgentName: n.AgentName,
		AgentKeys: n.AgentKeys || o.AgentKeys, Notifiers: n.Notifiers || o.Notifiers, API: n.API || o.API, Bus: n.Bus || o.Bus}
	if u.AgentRegion == "" {
		u.AgentRegion, u.AgentName = o.AgentRegion, o.AgentName
	}
	switch {
	case n.Checks == nil:
		u.Checks = o.Checks
	case o.Checks == nil:
		u.Checks = n.Checks
	default:
		u.Checks = func(c *Check) bool { return n.Checks(c) || o.Checks(c) }
	}
	return u
}

// RequireSecrets returns an error naming, with its position, every secret
// that needs needs and whose environment variable was unset at load; nil
// when there is none. "outpost check" asks for the selected checks'.
func (c *Config) RequireSecrets(needs Needs) error {
	var errs errorList
	c.requireSecrets(needs, &errs)
	return errs.err()
}

func (c *Config) requireSecrets(needs Needs, errs *errorList) {
	need := func(s *Secret) {
		if s.missing != nil {
			e := *s.missing
			errs.add(e.Pos, e.Check, "%s", e.Msg)
		}
	}
	own := -1
	if needs.AgentRegion != "" {
		own = c.agentIndex(needs.AgentRegion, needs.AgentName)
	}
	for i := range c.Agents {
		if needs.AgentKeys || i == own {
			need(&c.Agents[i].Key)
		}
	}
	if needs.API {
		need(&c.API.Token)
	}
	if needs.Bus {
		c.requireBusSecrets(need)
	}
	if needs.Notifiers {
		for i := range c.Notifiers {
			walkSecrets(reflect.ValueOf(&c.Notifiers[i]).Elem(), need)
		}
	}
	if needs.Checks != nil {
		for _, ch := range c.Checks {
			if needs.Checks(ch) {
				walkSecrets(reflect.ValueOf(ch).Elem(), need)
			}
		}
	}
}

// MissingNotifiers returns the names of the notifiers with a Missing
// secret, in configuration order: a process that did not need them (an
// agent) cannot use them.
func (c *Config) MissingNotifiers() []string {
	var names []string
	for i := range c.Notifiers {
		missing := false
		walkSecrets(reflect.ValueOf(&c.Notifiers[i]).Elem(), func(s *Secret) { missing = missing || s.Missing() })
		if missing {
			names = append(names, c.Notifiers[i].Name)
		}
	}
	return names
}

// agentIndex is the index of the agents: entry AgentKey picks, or -1.
func (c *Config) agentIndex(region, name string) int {
	anyAgent := -1
	for i, a := range c.Agents {
		if a.Region != region {
			continue
		}
		if name == "" || a.Name == name {
			return i
		}
		if a.Name == "" && anyAgent < 0 {
			anyAgent = i
		}
	}
	return anyAgent
}

var (
	secretType = reflect.TypeFor[Secret]()
	checksPkg  = secretType.PkgPath()
)

// walkSecrets calls fn with every Secret in v, following this package's
// structs, pointers and slices (not maps, nor other packages' types, which
// hold none).
func walkSecrets(v reflect.Value, fn func(*Secret)) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			walkSecrets(v.Elem(), fn)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			walkSecrets(v.Index(i), fn)
		}
	case reflect.Struct:
		t := v.Type()
		if t == secretType {
			if v.CanAddr() {
				fn(v.Addr().Interface().(*Secret))
			}
			return
		}
		if t.PkgPath() != checksPkg {
			return
		}
		for i := range v.NumField() {
			if t.Field(i).IsExported() {
				walkSecrets(v.Field(i), fn)
			}
		}
	}
}

// decodeSecret decodes a Secret. An unset variable is not an error here:
// the secret is Missing, and the error kept for the processes that need it.
func (d *decoder) decodeSecret(n *yaml.Node, path string, s *Secret) {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		var unset *unsetEnvError
		if _, err := expandEnv(n.Value, d.lookup); errors.As(err, &unset) {
			msg := err.Error()
			if path != "" {
				msg = path + ": " + msg
			}
			d.envUsed = true
			*s = Secret{missing: &Error{Pos: d.pos(n), Check: d.check, Msg: msg}}
			return
		}
	}
	if sc, ok := d.scalar(n, path, "a value"); ok {
		if err := s.decodeScalar(sc); err != nil {
			d.errAt(n, path, "%v", err)
		}
	}
}
