package alerting

import (
	"sync"
	"time"

	"github.com/outposthq/outpost/probes/wire"
)

// Sequence memory bounds.
const (
	// recentSeqs is how many accepted sequence numbers an agent's memory
	// keeps besides its highest, so that a batch re-sent after a lost
	// response is answered "duplicate" even when later batches went
	// through in the meantime.
	recentSeqs = 16
	// maxAgentsPerRegion bounds the agent names remembered per region.
	// Names come from authenticated batches, but they are still input.
	maxAgentsPerRegion = 64
	// agentForgetAfter is how long an agent must have been silent before
	// its memory may be dropped to make room for a new name: longer than
	// any request signed while it was last seen stays acceptable.
	agentForgetAfter = 2 * wire.MaxClockSkew
)

// seqVerdict is what a batch's sequence number means for its agent.
type seqVerdict int

const (
	seqNew       seqVerdict = iota // above every accepted one: apply
	seqDuplicate                   // accepted before: answer "duplicate", apply nothing
	seqReplay                      // below the highest and not recently accepted: refuse
)

// seqMemory is what an evaluator remembers of one agent's sequence
// numbers. The zero value has accepted nothing.
type seqMemory struct {
	highest uint64
	// recent are recently accepted numbers; zero marks a free slot.
	recent [recentSeqs]uint64
	next   int
}

// classify says what seq means given what was accepted.
func (m *seqMemory) classify(seq uint64) seqVerdict {
	if seq > m.highest {
		return seqNew
	}
	for _, s := range m.recent {
		if s == seq {
			return seqDuplicate
		}
	}
	return seqReplay
}

// with returns m having accepted seq, which classify called new.
func (m seqMemory) with(seq uint64) seqMemory {
	m.highest = seq
	m.recent[m.next] = seq
	m.next = (m.next + 1) % recentSeqs
	return m
}

// restoreSeqMemory rebuilds a memory from a highest number and a list of
// recent ones (as persisted, oldest first), keeping the latest recentSeqs
// that are valid.
func restoreSeqMemory(highest uint64, recent []uint64) seqMemory {
	valid := make([]uint64, 0, len(recent))
	for _, s := range recent {
		if s != 0 && s <= highest {
			valid = append(valid, s)
		}
	}
	var m seqMemory
	for _, s := range valid[max(0, len(valid)-recentSeqs):] {
		m = m.with(s)
	}
	m.highest = highest
	return m
}

// recentList returns the recent numbers oldest first, for persisting.
func (m *seqMemory) recentList() []uint64 {
	out := make([]uint64, 0, recentSeqs)
	for i := range recentSeqs {
		if s := m.recent[(m.next+i)%recentSeqs]; s != 0 {
			out = append(out, s)
		}
	}
	return out
}

// agentState is what the evaluator knows of one agent (a region and the
// name in its batches).
type agentState struct {
	name string
	// mu serialises the agent's batches from the sequence check to the
	// last result applied, so that a batch retried while its first attempt
	// is still in flight waits and is then answered "duplicate".
	mu   sync.Mutex
	seqs seqMemory // guarded by mu

	// Guarded by the region's mutex.
	inflight  int       // batches between lookup and done; never forgotten while > 0
	lastSeen  time.Time // receipt of the latest accepted batch, possibly before a restart
	lastSeq   uint64    // 0 until a batch is accepted
	digest    string    // config digest of the latest accepted batch
	digestBad bool
}

// agent returns the state of the named agent of r, creating it if needed,
// and marks it in flight; the caller must call r.release(a). When r
// already remembers maxAgentsPerRegion agents, the one silent longest is
// forgotten if it has been silent agentForgetAfter; otherwise the new name
// is refused (nil).
func (r *regionState) agent(name string, now time.Time) *agentState {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.agents[name]
	if !ok {
		if len(r.agents) >= maxAgentsPerRegion && !r.forgetOldest(now) {
			return nil
		}
		a = &agentState{name: name}
		r.agents[name] = a
	}
	a.inflight++
	return a
}

// release ends what agent started. An agent none of whose batches was
// accepted is forgotten, so that refused batches leave no trace.
func (r *regionState) release(a *agentState) {
	r.mu.Lock()
	a.inflight--
	if a.inflight == 0 && a.lastSeq == 0 {
		delete(r.agents, a.name)
	}
	r.mu.Unlock()
}

// forgetOldest drops the agent silent longest if it has been silent
// agentForgetAfter and nothing is in flight for it. r.mu is held.
func (r *regionState) forgetOldest(now time.Time) bool {
	var oldest *agentState
	for _, a := range r.agents {
		if a.inflight == 0 && (oldest == nil || a.lastSeen.Before(oldest.lastSeen)) {
			oldest = a
		}
	}
	if oldest == nil || now.Sub(oldest.lastSeen) < agentForgetAfter {
		return false
	}
	delete(r.agents, oldest.name)
	if r.forget != nil {
		r.forget(oldest.name)
	}
	return true
}
