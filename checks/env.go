package checks

import (
	"fmt"
	"strings"
)

// unsetEnvError is expandEnv's error for a reference to an unset variable
// without a default: a secret's may be set aside (see Secret.Missing)
// rather than fail the load.
type unsetEnvError struct{ name string }

func (e *unsetEnvError) Error() string {
	return fmt.Sprintf("environment variable %s is not set (use ${%s:-default} to give a default)", e.name, e.name)
}

// LookupEnv resolves an environment variable; os.LookupEnv has this shape.
// Load takes one so that tests and embedders control the environment.
type LookupEnv func(name string) (string, bool)

// expansion is the outcome of expanding ${...} references in one scalar.
type expansion struct {
	value string
	// fromEnv lists the values that were substituted from the environment
	// (not from a literal default). They are treated as secrets: they are
	// redacted from results and never echoed in errors.
	fromEnv []string
	// refs names the variables referenced, for messages that must describe
	// a value without showing it.
	refs []string
}

// expandEnv replaces ${NAME} and ${NAME:-default} in s. "$${" stands for a
// literal "${". A reference to an unset variable without a default is an
// error naming the variable.
func expandEnv(s string, lookup LookupEnv) (expansion, error) {
	if !strings.Contains(s, "${") {
		return expansion{value: s}, nil
	}
	var b strings.Builder
	var x expansion
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			i += 3
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			b.WriteByte(s[i])
			i++
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return expansion{}, fmt.Errorf("unterminated ${ reference (write $${ for a literal ${)")
		}
		body := s[i+2 : i+end]
		i += end + 1
		name, def, hasDef := strings.Cut(body, ":-")
		if !validEnvName(name) {
			return expansion{}, fmt.Errorf("invalid environment variable name %q in ${...}", name)
		}
		if strings.Contains(def, "${") {
			// "${A:-${B}}" would end at the first "}" and leave a stray one.
			return expansion{}, fmt.Errorf("a default cannot contain ${...}; write $${ for a literal ${")
		}
		x.refs = append(x.refs, name)
		if v, ok := lookup(name); ok && (v != "" || !hasDef) {
			b.WriteString(v)
			if v != "" {
				x.fromEnv = append(x.fromEnv, v)
			}
			continue
		}
		if !hasDef {
			return expansion{}, &unsetEnvError{name}
		}
		b.WriteString(def)
	}
	x.value = b.String()
	return x, nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
