package status

import "sync"

// Shared hands one result to every caller that asks while it is
// being made: the first caller builds, the others wait for it. A caller
// that comes after the build finished starts a new one, so an answer is
// never older than the request that asked for it was long.
type Shared struct {
	mu  sync.Mutex
	cur *sharing // the build under way, if any
}

type sharing struct {
	done chan struct{}
	body []byte
	err  error
}

// Get returns what produce makes: made now, or by the call under way when
// Get was called. The zero Shared is ready to use.
func (s *Shared) Get(produce func() ([]byte, error)) ([]byte, error) {
	s.mu.Lock()
	if b := s.cur; b != nil {
		s.mu.Unlock()
		<-b.done
		return b.body, b.err
	}
	b := &sharing{done: make(chan struct{})}
	s.cur = b
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.cur = nil
		s.mu.Unlock()
		close(b.done)
	}()
	b.body, b.err = produce()
	return b.body, b.err
}
