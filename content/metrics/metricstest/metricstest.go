// Package metricstest reads scraped metrics for tests: it parses the Prometheus text format
// with Prometheus's own parser and adds up series selected by labels.
package metricstest

import (
	"io"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are the metric families of one scrape, by name.
type Families = map[string]*dto.MetricFamily

// Labels select series by some of their labels.
type Labels map[string]string

// Parse reads a scrape in the Prometheus text format.
func Parse(r io.Reader) (Families, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(r)
}

// Sum adds up the values of name's series that have want's labels (a histogram's sample
// count, a summary's too), and says how many series matched.
func Sum(fams Families, name string, want Labels) (total float64, series int) {
	f := fams[name]
	if f == nil {
		return 0, 0
	}
	for _, m := range f.Metric {
		if !Match(m, want) {
			continue
		}
		series++
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		case m.Summary != nil:
			total += float64(m.Summary.GetSampleCount())
		case m.Untyped != nil:
			total += m.Untyped.GetValue()
		}
	}
	return total, series
}

// Match reports whether m has every label of want.
func Match(m *dto.Metric, want Labels) bool {
	for k, v := range want {
		found := false
		for _, l := range m.Label {
			if l.GetName() == k {
				found = l.GetValue() == v
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
