package probes

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// serveBenchDNS is the DNS side of TestBenchTarget: an authoritative
// answer for www.example.test, served until stdin closes.
func serveBenchDNS(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z := newZone("example.test.", true, "www.example.test. 300 IN A 203.0.113.10", "www.example.test. 300 IN A 203.0.113.11")
	mux := dns.NewServeMux()
	mux.Handle(".", z)
	srv := &dns.Server{PacketConn: pc, Handler: mux}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	fmt.Println(pc.LocalAddr().String())
	io.Copy(io.Discard, os.Stdin)
	srv.Shutdown()
}

// BenchmarkDNSCheckVsBareExchange runs an Outpost dns check (answers,
// forbid and authoritative expectations, normalisation, observations) and a
// bare miekg dns.Client.Exchange of the same question in alternating blocks
// in one run, and reports the CPU of each and their ratio.
func BenchmarkDNSCheckVsBareExchange(b *testing.B) {
	addr := startBenchChild(b, "dns")
	_, c := loadOne(b, fmt.Sprintf("- id: bench\n  dns:\n    name: www.example.test\n    resolvers: ['%s']\n    expect: {answers: [203.0.113.10, 203.0.113.11], forbid: [198.51.100.7], authoritative: true}\n", addr), nil)
	p, err := New(c, Options{Region: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	client := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	q := new(dns.Msg)
	q.SetQuestion("www.example.test.", dns.TypeA)
	ctx := context.Background()

	compareCPU(b, 200, "check", "exchange", func() {
		if r := p.Probe(ctx); !r.OK {
			b.Fatalf("probe failed: %s", r.Reason)
		}
	}, func() {
		q.Id = dns.Id()
		r, _, err := client.Exchange(q, addr)
		if err != nil || len(r.Answer) != 2 {
			b.Fatalf("bare exchange: %v", err)
		}
	})
}
