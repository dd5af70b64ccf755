package teams

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
)

// A Workflows webhook URL: its sig= parameter is the credential.
const teamsPath = "/workflows/0123abcd/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=T3AMSs1gn4tur3S3cr3tXXXX"

func newTestTeams(t testing.TB, u string) *Notifier {
	t.Helper()
	s, err := New(&checks.TeamsNotifier{WebhookURL: checks.NewSecret(u)}, notify.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.CloseIdleConnections)
	return s
}

// fakeWorkflow is a Teams Workflows webhook that accepts (202) only a
// payload that passes validatePayload, and answers 400 with the reasons
// otherwise, as the real one refuses a malformed card.
type fakeWorkflow struct {
	*httptest.Server
	mu       sync.Mutex
	cards    []map[string]any
	problems []string
}

func newFakeWorkflow(t testing.TB) *fakeWorkflow {
	f := &fakeWorkflow{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var probs []string
		if r.Method != http.MethodPost {
			probs = append(probs, "method "+r.Method)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			probs = append(probs, "Content-Type "+ct)
		}
		if r.URL.Query().Get("sig") == "" {
			probs = append(probs, "no sig")
		}
		card, p := validatePayload(body)
		probs = append(probs, p...)
		f.mu.Lock()
		f.problems = append(f.problems, probs...)
		if len(probs) == 0 {
			f.cards = append(f.cards, card)
		}
		f.mu.Unlock()
		if len(probs) > 0 {
			http.Error(w, strings.Join(probs, "; "), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(f.Close)
	return f
}

// validatePayload checks body against the Workflows message schema and
// the parts of Adaptive Card 1.4 Outpost uses, strictly: required fields
// with their JSON types, known element and action types, no unknown keys.
// It returns the card's content.
func validatePayload(body []byte) (map[string]any, []string) {
	var probs []string
	bad := func(f string, a ...any) { probs = append(probs, fmt.Sprintf(f, a...)) }
	var msg map[string]any
	if err := json.Unmarshal(body, &msg); err != nil {
		return nil, []string{"not JSON: " + err.Error()}
	}
	str := func(m map[string]any, path, key string, required bool) string {
		v, ok := m[key]
		if !ok {
			if required {
				bad("%s.%s is required", path, key)
			}
			return ""
		}
		s, ok := v.(string)
		if !ok {
			bad("%s.%s is %T, want a string", path, key, v)
		} else if required && s == "" {
			bad("%s.%s is empty", path, key)
		}
		return s
	}
	only := func(m map[string]any, path string, keys ...string) {
		for k := range m {
			if !strings.Contains(","+strings.Join(keys, ",")+",", ","+k+",") {
				bad("%s: unknown key %q", path, k)
			}
		}
	}
	only(msg, "message", "type", "attachments")
	if str(msg, "message", "type", true) != "message" {
		bad("message.type must be \"message\"")
	}
	atts, ok := msg["attachments"].([]any)
	if !ok || len(atts) != 1 {
		bad("message.attachments must be an array of one attachment, got %T", msg["attachments"])
		return nil, probs
	}
	att, ok := atts[0].(map[string]any)
	if !ok {
		bad("attachments[0] is %T", atts[0])
		return nil, probs
	}
	only(att, "attachment", "contentType", "contentUrl", "content")
	if str(att, "attachment", "contentType", true) != ContentType {
		bad("attachment.contentType must be %q", ContentType)
	}
	if v, ok := att["contentUrl"]; ok && v != nil {
		bad("attachment.contentUrl must be null")
	}
	card, ok := att["content"].(map[string]any)
	if !ok {
		bad("attachment.content is %T, want an object", att["content"])
		return nil, probs
	}
	only(card, "card", "$schema", "type", "version", "body", "actions", "msteams")
	if str(card, "card", "type", true) != "AdaptiveCard" {
		bad("card.type must be AdaptiveCard")
	}
	if v := str(card, "card", "version", true); v != "1.4" {
		bad("card.version %q, want 1.4", v)
	}
	str(card, "card", "$schema", true)
	els, ok := card["body"].([]any)
	if !ok || len(els) == 0 {
		bad("card.body must be a non-empty array")
	}
	for i, e := range els {
		el, ok := e.(map[string]any)
		path := fmt.Sprintf("body[%d]", i)
		if !ok {
			bad("%s is %T", path, e)
			continue
		}
		switch typ := str(el, path, "type", true); typ {
		case "TextBlock":
			only(el, path, "type", "text", "weight", "size", "color", "wrap")
			str(el, path, "text", true)
			for _, k := range []string{"weight", "size", "color"} {
				str(el, path, k, false)
			}
			if w, ok := el["wrap"]; ok {
				if _, isBool := w.(bool); !isBool {
					bad("%s.wrap is %T, want a boolean", path, w)
				}
			}
		case "FactSet":
			only(el, path, "type", "facts")
			facts, ok := el["facts"].([]any)
			if !ok || len(facts) == 0 {
				bad("%s.facts must be a non-empty array", path)
			}
			for j, f := range facts {
				fm, ok := f.(map[string]any)
				fp := fmt.Sprintf("%s.facts[%d]", path, j)
				if !ok {
					bad("%s is %T", fp, f)
					continue
				}
				only(fm, fp, "title", "value")
				str(fm, fp, "title", true)
				str(fm, fp, "value", true)
			}
		default:
			bad("%s.type %q is not an element Outpost sends", path, typ)
		}
	}
	if acts, ok := card["actions"]; ok {
		list, ok := acts.([]any)
		if !ok {
			bad("card.actions is %T", acts)
		}
		for i, a := range list {
			am, ok := a.(map[string]any)
			path := fmt.Sprintf("actions[%d]", i)
			if !ok {
				bad("%s is %T", path, a)
				continue
			}
			only(am, path, "type", "title", "url")
			if str(am, path, "type", true) != "Action.OpenUrl" {
				bad("%s.type must be Action.OpenUrl", path)
			}
			str(am, path, "title", true)
			if u, err := url.Parse(str(am, path, "url", true)); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				bad("%s.url is not an absolute http(s) URL", path)
			}
		}
	}
	return card, probs
}

func TestTeamsCard(t *testing.T) {
	f := newFakeWorkflow(t)
	s := newTestTeams(t, f.URL+teamsPath)
	down := notifytest.PageDown("outpost:check:web-home")
	down.Details = map[string]string{"state": "DOWN"}
	down.Runbook = "https://runbooks.example.com/web-home"
	for _, n := range []notify.Notification{down, notifytest.ResolveOf(down)} {
		if retry, err := s.Notify(context.Background(), n); err != nil || retry {
			t.Fatalf("%s: Notify = (%v, %v); fake says %v", n.Action, retry, err, f.problems)
		}
	}
	if len(f.cards) != 2 {
		t.Fatalf("cards %d, problems %v", len(f.cards), f.problems)
	}
	all, _ := json.Marshal(f.cards[0])
	for _, want := range []string{`"[CRITICAL] web-home DOWN"`, `"color":"Attention"`, down.Summary,
		`{"title":"Check","value":"web-home"}`, `{"title":"State","value":"DOWN"}`, `{"title":"Severity","value":"critical"}`,
		`{"title":"Regions","value":"us-east, eu-west (2 of 3 failing)"}`, `"title":"us-east"`, "status 503, want 200", "connection refused",
		`"url":"` + down.Link + `"`, `"url":"` + down.Runbook + `"`} {
		if !strings.Contains(string(all), want) {
			t.Errorf("card lacks %s:\n%s", want, all)
		}
	}
	res, _ := json.Marshal(f.cards[1])
	if !strings.Contains(string(res), `"[RESOLVED] web-home OK"`) || !strings.Contains(string(res), `"color":"Good"`) {
		t.Errorf("resolve card:\n%s", res)
	}
}

// TestTeamsCardSchemaEdges: a notification with nothing optional (no
// check, evidence or link) and one with a link that is not http(s) still
// make valid cards.
func TestTeamsCardSchemaEdges(t *testing.T) {
	for _, n := range []notify.Notification{
		{Kind: notify.KindPeerDown, Action: notify.ActionTrigger, Key: "outpost:peer:b", Route: notify.RouteMeta, Summary: "peer b does not answer"},
		{Kind: notify.KindStateSetAside, Key: "k", Summary: "x", Link: "javascript:alert(1)", Runbook: "/relative"},
		{Kind: "check_down", Action: notify.ActionResolve, Key: "k2"},
	} {
		body, _ := json.Marshal(Message(n))
		if _, probs := validatePayload(body); len(probs) > 0 {
			t.Errorf("%s %s: %v\n%s", n.Kind, n.Action, probs, body)
		}
	}
}

// TestTeamsFakeRefusesBadPayloads: the fake is strict, or the tests above
// prove nothing.
func TestTeamsFakeRefusesBadPayloads(t *testing.T) {
	for name, body := range map[string]string{
		"no attachments":  `{"type":"message","attachments":[]}`,
		"wrong content":   `{"type":"message","attachments":[{"contentType":"text/plain","content":{}}]}`,
		"version number":  `{"type":"message","attachments":[{"contentType":"` + ContentType + `","content":{"$schema":"x","type":"AdaptiveCard","version":1.4,"body":[{"type":"TextBlock","text":"a"}]}}]}`,
		"fact not string": `{"type":"message","attachments":[{"contentType":"` + ContentType + `","content":{"$schema":"x","type":"AdaptiveCard","version":"1.4","body":[{"type":"FactSet","facts":[{"title":"a","value":3}]}]}}]}`,
		"unknown key":     `{"type":"message","attachments":[{"contentType":"` + ContentType + `","content":{"$schema":"x","type":"AdaptiveCard","version":"1.4","body":[{"type":"TextBlock","text":"a","markdown":true}]}}]}`,
	} {
		if _, probs := validatePayload([]byte(body)); len(probs) == 0 {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestTeamsRetryClassification: the classification every HTTP receiver
// must pass (429 with Retry-After, 5xx retried, other 4xx not).
func TestTeamsRetryClassification(t *testing.T) {
	notifytest.RetryTests(t, "T3AMSs1gn4tur3S3cr3tXXXX", func(t *testing.T, u string) notify.Notifier { return newTestTeams(t, u+teamsPath) })
}

// TestTeamsLeaksNoSecret: a webhook that echoes its URL in a refusal, and
// one that cannot be reached, leave no part of the URL in the error.
func TestTeamsLeaksNoSecret(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad request to "+r.URL.String()+" sig="+r.URL.Query().Get("sig"), http.StatusBadRequest)
	}))
	t.Cleanup(echo.Close)
	secrets := []string{"T3AMSs1gn4tur3S3cr3tXXXX", "/workflows/0123abcd/triggers/manual/paths/invoke"}
	if retry, err := notifytest.AssertNotifyLeaksNoSecret(t, newTestTeams(t, echo.URL+teamsPath), notifytest.PageDown("k"), secrets...); err == nil || retry {
		t.Errorf("Notify = (%v, %v), want a final refusal", retry, err)
	}
	if retry, err := notifytest.AssertNotifyLeaksNoSecret(t, newTestTeams(t, "http://"+notifytest.ClosedAddr(t)+teamsPath), notifytest.PageDown("k"), secrets...); err == nil || !retry {
		t.Errorf("Notify = (%v, %v), want a retryable error", retry, err)
	}
}
