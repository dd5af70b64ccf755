package checks

// TeamsNotifier posts an Adaptive Card to a Microsoft Teams Workflows
// webhook (the "When a Teams webhook request is received" trigger).
type TeamsNotifier struct {
	// WebhookURL is the trigger's URL, from ${ENV}: its sig= parameter
	// is a credential.
	WebhookURL Secret `yaml:"webhook_url"`
	Src        Source
}

func validateTeams(t *TeamsNotifier, label string, errs *errorList) {
	if t.WebhookURL.IsZero() {
		errs.add(t.Src.At("webhook_url"), "", "%s: teams.webhook_url is required, such as webhook_url: ${TEAMS_WEBHOOK_URL}", label)
	} else if msg := checkURL(t.WebhookURL.Value(), true); msg != "" && !t.WebhookURL.Missing() {
		errs.add(t.Src.At("webhook_url"), "", "%s: teams.webhook_url %s", label, msg)
	}
}
