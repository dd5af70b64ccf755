package alerting

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// partitionedRegion is a region whose agent reaches the target and the
// evaluators only through in-process Toxiproxies, so that a test can cut
// the region off from everything and let it back.
type partitionedRegion struct {
	name    string
	proxies []*toxiproxy.Proxy
}

func (p *partitionedRegion) cut() {
	for _, x := range p.proxies {
		x.Stop()
	}
}

func (p *partitionedRegion) heal(t *testing.T) {
	t.Helper()
	for _, x := range p.proxies {
		if err := x.Start(); err != nil { // the same address again
			t.Fatal(err)
		}
	}
}

// proxyTo starts a Toxiproxy from listen (host:0 for any port) to upstream.
func proxyTo(t *testing.T, name, listen, upstream string) *toxiproxy.Proxy {
	t.Helper()
	tox := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(tox, name, listen, upstream)
	if err := p.Start(); err != nil {
		t.Skipf("cannot listen on %s: %v", listen, err)
	}
	t.Cleanup(p.Stop)
	return p
}

// TestEndToEndPartitionHealsWithoutPaging is the false page of issue 13:
// two of three regions are cut off from the target and from both
// evaluators for minutes while the target stays healthy. Their probes fail
// meanwhile, and their agents spool those failures. When the links come
// back the spools are replayed, and the evaluators must take them for what
// they are, old news: no trigger of any kind for the target. A real outage
// that starts while the two regions are still replaying still pages as the
// quorum of fresh regions allows.
func TestEndToEndPartitionHealsWithoutPaging(t *testing.T) {
	var down bool
	var mu = make(chan struct{}, 1)
	setDown := func(v bool) { mu <- struct{}{}; down = v; <-mu }
	target := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu <- struct{}{}
		d := down
		<-mu
		if d {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok\n")
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target.Listener = ln
	target.Start()
	t.Cleanup(target.Close)
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	checksYAML := fmt.Sprintf(`checks:
  - id: web-home
    interval: 2s
    timeout: 500ms
    failure: {consecutive: 2}
    http: {url: "http://www.example.test:%s/"}
`, port)
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	evals := []*e2eEvaluator{
		startEvaluator(t, regionConfig(t, "us-east", checksYAML), clk),
		startEvaluator(t, regionConfig(t, "us-east", checksYAML), clk),
	}
	// Each region's own path to the target: 127.0.0.1 for us-east, a
	// proxy on 127.0.0.2 and 127.0.0.3 (same port) for the others.
	regions := map[string]*partitionedRegion{}
	for i, name := range []string{"us-east", "eu-west", "ap-south"} {
		ip := "127.0.0.1"
		p := &partitionedRegion{name: name}
		if i > 0 {
			ip = fmt.Sprintf("127.0.0.%d", i+1)
			p.proxies = append(p.proxies, proxyTo(t, name+"-target", ip+":"+port, ln.Addr().String()))
		}
		var urls []string
		for j, ev := range evals {
			u := ev.url
			if i > 0 {
				x := proxyTo(t, fmt.Sprintf("%s-eval%d", name, j), "127.0.0.1:0", strings.TrimPrefix(ev.url, "http://"))
				p.proxies = append(p.proxies, x)
				u = "http://" + x.Listen
			}
			urls = append(urls, u)
		}
		regions[name] = p
		startAgentWith(t, regionConfig(t, name, checksYAML), clk, name, urls, t.TempDir(),
			probes.Options{Resolver: regionResolver(netip.MustParseAddr(ip))})
	}
	allLive := func() bool {
		for _, ev := range evals {
			for _, r := range []string{"us-east", "eu-west", "ap-south"} {
				if stateOf(ev.ev, r) != decide.RegionLive {
					return false
				}
			}
			if c := ev.ev.Snapshot().Checks[0]; c.State != decide.StateOK || !strings.Contains(c.Summary, "OK in 3/3 regions") {
				return false
			}
		}
		return true
	}
	advanceUntil(t, clk, 250*time.Millisecond, time.Minute, "every region live and the check OK", allLive)

	// The partition: eu-west and ap-south lose the target and both
	// evaluators for five minutes; their agents spool what they see.
	regions["eu-west"].cut()
	regions["ap-south"].cut()
	cutAt := clk.Now()
	advanceUntil(t, clk, 500*time.Millisecond, 10*time.Minute, "five minutes of partition", func() bool { return clk.Now().Sub(cutAt) >= 5*time.Minute })
	for _, ev := range evals {
		if stateOf(ev.ev, "eu-west") != decide.RegionStale || stateOf(ev.ev, "ap-south") != decide.RegionStale {
			t.Fatalf("the cut-off regions are not STALE: %+v", ev.ev.Snapshot().Regions)
		}
	}

	// The links come back; the spools are replayed; the regions are live.
	regions["eu-west"].heal(t)
	regions["ap-south"].heal(t)
	// What the partitioned agent replays is kept as history, marked late.
	sawLate := false
	advanceUntil(t, clk, 250*time.Millisecond, 2*time.Minute, "the regions back and the check OK everywhere", func() bool {
		w, _ := evals[0].ev.Window("web-home", "eu-west")
		for _, s := range w.Samples {
			sawLate = sawLate || s.Late
		}
		return allLive()
	})
	healedAt := clk.Now()
	advanceUntil(t, clk, 500*time.Millisecond, time.Minute, "a minute after the heal", func() bool { return clk.Now().Sub(healedAt) >= time.Minute })
	for i, ev := range evals {
		for _, route := range []string{checks.RouteCritical, checks.RouteWarning} {
			if p := ev.pages(route); len(p) != 0 {
				t.Errorf("evaluator %d sent %s notifications for a healthy target after the partition healed: %s", i, route, p[0].Summary)
			}
		}
	}
	if !sawLate {
		t.Error("nothing replayed was kept in eu-west's history, marked late")
	}

	// A real outage still pages from the fresh regions.
	setDown(true)
	advanceUntil(t, clk, 250*time.Millisecond, time.Minute, "the outage paged", func() bool {
		for _, ev := range evals {
			if len(ev.pages(checks.RouteCritical)) == 0 {
				return false
			}
		}
		return true
	})
}
