package checks

// API configures the evaluator's HTTP API (/api/v1: silences). Without a
// token the API is off: every request to it is answered 404.
type API struct {
	// Token is the bearer token every API request must carry, from the
	// environment; at least minTokenLen characters.
	Token Secret `yaml:"token"`
	Src   Source
}

// Enabled reports whether the API is on: a token is configured and set.
func (a *API) Enabled() bool {
	return !a.Token.IsZero() && !a.Token.Missing() && a.Token.Value() != ""
}

func validateAPI(a *API, errs *errorList) {
	if a.Src.Has("token") && !a.Token.Missing() && len(a.Token.Value()) < minTokenLen {
		errs.add(a.Src.At("token"), "", "api.token is shorter than %d characters; use something like `openssl rand -hex 16`", minTokenLen)
	}
}
