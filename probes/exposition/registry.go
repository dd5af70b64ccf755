package exposition

import (
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Source is a collector of many series that can also render them itself.
// Collect (used for protobuf and by Gather) and WriteMetrics must expose
// the same families and samples.
type Source interface {
	prometheus.Collector
	// WriteMetrics writes every family of the source to w. It must not
	// hold a lock its owner's hot path takes for longer than it takes to
	// copy one record.
	WriteMetrics(w *Writer)
}

// Registry is a prometheus.Registerer and Gatherer that keeps Sources
// apart from ordinary collectors, so that Handler can render them
// directly. Registration checks are client_golang's own: each Source's
// descriptors are also registered, without samples, next to the ordinary
// collectors, so a name clash is refused at Register as before.
type Registry struct {
	plain   *prometheus.Registry // ordinary collectors and the Sources' descriptors
	sources *prometheus.Registry // the Sources, for protobuf and Gather
	mu      sync.Mutex
	list    []Source
	shadows map[Source]shadow
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{plain: prometheus.NewRegistry(), sources: prometheus.NewRegistry(), shadows: map[Source]shadow{}}
}

// shadow has a Source's descriptors and no samples.
type shadow struct{ s Source }

func (s shadow) Describe(ch chan<- *prometheus.Desc) { s.s.Describe(ch) }
func (shadow) Collect(chan<- prometheus.Metric)      {}

// Register registers c; a Source is rendered directly by Handler.
func (r *Registry) Register(c prometheus.Collector) error {
	s, ok := c.(Source)
	if !ok {
		return r.plain.Register(c)
	}
	sh := shadow{s}
	if err := r.plain.Register(sh); err != nil {
		return err
	}
	if err := r.sources.Register(s); err != nil {
		r.plain.Unregister(sh)
		return err
	}
	r.mu.Lock()
	r.list = append(r.list, s)
	r.shadows[s] = sh
	r.mu.Unlock()
	return nil
}

// MustRegister registers cs and panics on the first error.
func (r *Registry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Unregister removes c; it reports whether c was registered.
func (r *Registry) Unregister(c prometheus.Collector) bool {
	s, ok := c.(Source)
	if !ok {
		return r.plain.Unregister(c)
	}
	r.mu.Lock()
	sh, found := r.shadows[s]
	delete(r.shadows, s)
	if i := slices.Index(r.list, s); i >= 0 {
		r.list = slices.Delete(r.list, i, i+1)
	}
	r.mu.Unlock()
	if !found {
		return false
	}
	r.plain.Unregister(sh)
	return r.sources.Unregister(s)
}

// Gather gathers every collector, Sources included, the ordinary way.
func (r *Registry) Gather() ([]*dto.MetricFamily, error) {
	return prometheus.Gatherers{r.plain, r.sources}.Gather()
}

func (r *Registry) sourceList() []Source {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.list)
}
