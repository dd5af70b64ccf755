package checks

import (
	"net/netip"
	"regexp"
	"time"
)

// TCPSpec is a TCP check: connect, optionally send a line and expect a reply.
type TCPSpec struct {
	Address    string     `yaml:"address"`
	Send       string     `yaml:"send"`
	Expect     *TCPExpect `yaml:"expect"`
	IPProtocol string     `yaml:"ip_protocol"`
	Resolver   string     `yaml:"resolver"`
	Src        Source
}

// TCPExpect is what a TCP check must see.
type TCPExpect struct {
	// Line must match the first line the server sends (after Send, if set).
	Line       *regexp.Regexp `yaml:"line"`
	Addresses  []netip.Prefix `yaml:"addresses"`
	MaxLatency time.Duration  `yaml:"max_latency"`
	Src        Source
}

func validateTCP(c *Check, id string, errs *errorList) {
	t := c.TCP
	validateAddress(t.Address, &t.Src, id, "tcp", errs)
	validateIPProtocol(t.IPProtocol, &t.Src, id, errs)
	validateResolver(t.Resolver, &t.Src, id, errs)
	if len(t.Send) > 64<<10 {
		errs.add(t.Src.At("send"), id, "tcp.send is longer than 64 KiB")
	}
	if t.Expect != nil {
		validateLatency(t.Expect.MaxLatency, c.Timeout, &t.Expect.Src, id, errs)
	}
}
