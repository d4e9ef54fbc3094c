package metrics

import (
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// taskBuckets run from a quick general_create to a long sync.
var taskBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

// taskMetrics are the task latencies this worker saw and the task counts of the whole
// deployment (the task table), sampled on scrape.
type taskMetrics struct {
	wait *prometheus.HistogramVec
	run  *prometheus.HistogramVec

	countDesc *prometheus.Desc
	mu        sync.Mutex
	counts    *sampled[map[string]int64] // nil until SetTaskCounts
}

func newTaskMetrics(reg prometheus.Registerer) *taskMetrics {
	t := &taskMetrics{
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "task_wait_seconds",
			Help: "Time tasks waited from dispatch to start, by task name and final state.", Buckets: taskBuckets},
			[]string{"name", "state"}),
		run: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "task_run_seconds",
			Help: "Time tasks ran, from start to finish, by task name and final state.", Buckets: taskBuckets},
			[]string{"name", "state"}),
		countDesc: prometheus.NewDesc(namespace+"_tasks", "Tasks not finished, by state (waiting: the queue depth; running), from the task table, sampled at most every few seconds.",
			[]string{"state"}, nil),
	}
	reg.MustRegister(t.wait, t.run, t)
	return t
}

// Describe implements prometheus.Collector for the sampled task counts.
func (t *taskMetrics) Describe(ch chan<- *prometheus.Desc) { ch <- t.countDesc }

// Collect implements prometheus.Collector: the task counts, when a source is set and answers.
func (t *taskMetrics) Collect(ch chan<- prometheus.Metric) {
	t.mu.Lock()
	s := t.counts
	t.mu.Unlock()
	if s == nil {
		return
	}
	counts, ok := s.get()
	if !ok {
		return
	}
	states := make([]string, 0, len(counts))
	for st := range counts {
		states = append(states, st)
	}
	sort.Strings(states)
	for _, st := range states {
		ch <- prometheus.MustNewConstMetric(t.countDesc, prometheus.GaugeValue, float64(counts[st]), st)
	}
}

// SampleEvery is how long a figure that costs a query (task counts, storage used) is reused
// between scrapes.
const SampleEvery = 5 * time.Second

// SetTaskCounts sets where the task counts come from: count returns the unfinished tasks by
// state; it is called on scrape, at most every SampleEvery.
func (m *Metrics) SetTaskCounts(count func() (map[string]int64, error)) {
	m.tasks.mu.Lock()
	m.tasks.counts = &sampled[map[string]int64]{every: SampleEvery, load: count}
	m.tasks.mu.Unlock()
}

// ObserveTask records a finished task: its name, final state, time waiting and time running.
func (m *Metrics) ObserveTask(name, state string, wait, run time.Duration) {
	m.tasks.wait.WithLabelValues(name, state).Observe(wait.Seconds())
	m.tasks.run.WithLabelValues(name, state).Observe(run.Seconds())
}
