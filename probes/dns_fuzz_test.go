package probes

import (
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/miekg/dns"
)

// FuzzDNSAnswer feeds arbitrary datagrams, as a hostile or broken server
// could send them, to what the prober does with a response that parses:
// extract must not panic and must keep its bounds whatever the records say.
// The seeds under testdata/fuzz/FuzzDNSAnswer are packed answers: a plain
// A answer, CNAME chains and loops, a huge TXT, records for another name,
// truncated and random bytes.
func FuzzDNSAnswer(f *testing.F) {
	const qname = "www.example.test."
	f.Fuzz(func(t *testing.T, data []byte) {
		msg := new(dns.Msg)
		if msg.Unpack(data) != nil {
			return
		}
		for _, qtype := range []uint16{dns.TypeA, dns.TypeTXT, dns.TypeMX, dns.TypeCNAME} {
			x := extract(msg, qname, qtype)
			typ := dns.TypeToString[qtype]
			if !slices.IsSorted(x.answers) {
				t.Fatalf("%s: answers not sorted: %q", typ, x.answers)
			}
			if len(slices.Compact(slices.Clone(x.answers))) != len(x.answers) {
				t.Fatalf("%s: answers not unique: %q", typ, x.answers)
			}
			if len(x.answers) > maxAnswers {
				t.Fatalf("%s: %d answers kept, want at most %d", typ, len(x.answers), maxAnswers)
			}
			for _, a := range x.answers {
				if len(a) > maxAnswerText {
					t.Fatalf("%s: answer of %d bytes kept, want at most %d", typ, len(a), maxAnswerText)
				}
				if !utf8.ValidString(a) {
					t.Fatalf("%s: answer %q is not UTF-8; it would be mangled in JSON results", typ, a)
				}
			}
			if len(x.chain) > maxCNAMEChain {
				t.Fatalf("%s: CNAME chain of %d names, want at most %d", typ, len(x.chain), maxCNAMEChain)
			}
			if !utf8.ValidString(x.problem) {
				t.Fatalf("%s: problem %q is not UTF-8", typ, x.problem)
			}
		}
	})
}
