package outbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
)

// TestDamagedOutboxIsSetAside: an outbox file cut short by a crash of the
// disk (or overwritten with garbage) used to panic bbolt, or fault, at
// every start: a crash loop that took paging down. Now it is moved aside
// with an ERROR that names both paths and what was lost, and the outbox
// starts empty and works.
func TestDamagedOutboxIsSetAside(t *testing.T) {
	src := t.TempDir()
	h := newPipe(t, src, map[string]notify.Notifier{"oncall": &notifytest.Recorder{}})
	for i := range 200 {
		h.enqueue(notifytest.PageDown(fmt.Sprint("outpost:check:web-", i)))
	}
	h.stop()
	whole, err := os.ReadFile(filepath.Join(src, OutboxFileName))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{"empty-ish": whole[:1], "garbage": []byte(strings.Repeat("not a bbolt file ", 400))}
	// Cuts inside the pages in use: a cut in the file's unused tail
	// loses nothing and is rightly read as it is.
	for _, cut := range []int{100, 4096, 4196, 8192, 3*4096 + 100} {
		cases[fmt.Sprint("cut at ", cut)] = whole[:cut]
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, OutboxFileName)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			rec := &notifytest.Recorder{}
			p := startPipe(t, dir, map[string]notify.Notifier{"oncall": rec})
			logs := p.logs.String()
			file, movedTo, lost := p.p.SetAside()
			if file != path || !strings.HasPrefix(movedTo, path+".corrupt-") || lost != OutboxLost {
				t.Errorf("SetAside = %q, %q, %q", file, movedTo, lost)
			}
			if !strings.Contains(logs, "moved aside") || !strings.Contains(logs, movedTo) {
				t.Errorf("no ERROR naming the moved file:\n%s", logs)
			}
			if got, err := os.ReadFile(movedTo); err != nil || string(got) != string(data) {
				t.Errorf("damaged file not kept for inspection: %v", err)
			}
			p.enqueue(notifytest.PageDown("outpost:check:after"))
			waitFor(t, "a page through the fresh outbox", func() bool { return rec.Calls() == 1 })
		})
	}
}
