package metrics_test

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/pulpgo/pulpgo/content/metrics"
)

// exported returns the names a query may use: every family of a registry whose collectors
// all have series, with the _bucket, _sum and _count series of histograms.
func exported(t *testing.T) (all map[string]bool, families []string) {
	t.Helper()
	m := metrics.New("serve")
	m.Requests(metrics.AppAPI).ObserveRequest("/x", "GET", 200, time.Millisecond, 1)
	m.Cache().CacheLookup("blob", true)
	m.Upstream().UpstreamRequest("blob_get", 200)
	m.Upstream().Budget("key", "host", 10, 1)
	m.Upstream().Breaker("host", metrics.BreakerClosed)
	m.ObserveTask("t", "completed", 0, 0)
	m.SetTaskCounts(func() (map[string]int64, error) { return map[string]int64{"waiting": 0}, nil })
	m.SetStorageUsed(func() (int64, error) { return 0, nil })
	m.SetEviction(func() metrics.EvictionCounts { return metrics.EvictionCounts{} })
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	all = map[string]bool{}
	for _, f := range fams {
		n := f.GetName()
		all[n] = true
		if strings.HasPrefix(n, "pulpgo_") {
			families = append(families, n)
		}
		if f.GetType() == dto.MetricType_HISTOGRAM {
			all[n+"_bucket"], all[n+"_sum"], all[n+"_count"] = true, true, true
		}
	}
	return all, families
}

// metricName finds metric names in a query: the project's and the Go client's standard ones.
var metricName = regexp.MustCompile(`\b(?:pulpgo|go|process)_[a-z0-9_]+\b`)

// TestDashboard parses docs/grafana/pulpgo.json as a Grafana dashboard and checks that every
// query names only metrics pulpgo exports; and that docs/operations.md names only those and
// lists every pulpgo_ family.
func TestDashboard(t *testing.T) {
	all, families := exported(t)
	raw, err := os.ReadFile("../../docs/grafana/pulpgo.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("docs/grafana/pulpgo.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard without a title, uid or panels: %q %q %d", dash.Title, dash.UID, len(dash.Panels))
	}
	used := map[string]bool{}
	for _, p := range dash.Panels {
		if p.Title == "" || p.Type == "" || len(p.Targets) == 0 {
			t.Errorf("panel %q: no title, type or query", p.Title)
		}
		for _, q := range p.Targets {
			names := metricName.FindAllString(q.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q query %s names no metric: %s", p.Title, q.RefID, q.Expr)
			}
			for _, n := range names {
				used[n] = true
				if !all[n] {
					t.Errorf("panel %q query %s names %s, which pulpgo does not export", p.Title, q.RefID, n)
				}
			}
			if strings.Count(q.Expr, "(") != strings.Count(q.Expr, ")") || strings.Count(q.Expr, "{") != strings.Count(q.Expr, "}") {
				t.Errorf("panel %q query %s: unbalanced brackets: %s", p.Title, q.RefID, q.Expr)
			}
		}
	}
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range metricName.FindAll(doc, -1) {
		if !all[string(n)] {
			t.Errorf("docs/operations.md names %s, which pulpgo does not export", n)
		}
	}
	for _, f := range families {
		if !bytes.Contains(doc, []byte("`"+f+"`")) {
			t.Errorf("docs/operations.md does not list %s", f)
		}
	}
	t.Logf("%d panels use %d metrics; %d pulpgo families", len(dash.Panels), len(used), len(families))
}
