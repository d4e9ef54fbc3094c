package pullthrough

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// rateHub is a hostile upstream of this test's own: Docker Hub's RateLimit headers on
// manifest answers with a remaining budget the test sets (GETs spend it, HEADs do not), 429
// with Retry-After for a GET when it is spent, tags the test moves to a new image (manifest,
// config and layer), and a down mode answering 503 to everything. It counts requests.
type rateHub struct {
	srv *httptest.Server

	mu        sync.Mutex
	remaining int
	epochs    map[string]int
	content   map[string][]byte
	down      bool
	requests  int
	gets      int // manifest GETs answered 200
}

func newRateHub(t *testing.T) *rateHub {
	h := &rateHub{remaining: 100, epochs: map[string]int{}, content: map[string][]byte{}}
	h.srv = httptest.NewServer(h)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *rateHub) set(f func(h *rateHub)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(h)
}

func (h *rateHub) counts() (requests, gets int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requests, h.gets
}

// image builds tag's current manifest and blobs and returns the manifest's digest; h.mu held.
func (h *rateHub) image(tag string) (string, []byte) {
	e := h.epochs[tag]
	layer := []byte(fmt.Sprintf("layer %s %d", tag, e))
	config := []byte(fmt.Sprintf(`{"tag":%q,"epoch":%d}`, tag, e))
	raw := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		client.Digest(config), len(config), client.Digest(layer), len(layer)))
	h.content[client.Digest(config)], h.content[client.Digest(layer)] = config, layer
	d := client.Digest(raw)
	h.content[d] = raw
	return d, raw
}

// current is the digest tag points to now.
func (h *rateHub) current(tag string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, _ := h.image(tag)
	return d
}

func (h *rateHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests++
	if h.down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	i := strings.LastIndex(r.URL.Path, "/")
	ref, rest := r.URL.Path[i+1:], r.URL.Path[:i]
	switch {
	case r.URL.Path == "/v2/":
	case strings.HasSuffix(rest, "/blobs"):
		b, ok := h.content[ref]
		if !ok {
			http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN","message":"unknown"}]}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
	case strings.HasSuffix(rest, "/manifests"):
		w.Header().Set("RateLimit-Limit", "100;w=21600")
		if r.Method == http.MethodGet && h.remaining <= 0 {
			w.Header().Set("RateLimit-Remaining", "0;w=21600")
			w.Header().Set("Retry-After", "3600")
			http.Error(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}`, http.StatusTooManyRequests)
			return
		}
		if r.Method == http.MethodGet {
			h.remaining--
			h.gets++
		}
		w.Header().Set("RateLimit-Remaining", fmt.Sprintf("%d;w=21600", h.remaining))
		d, raw := h.image(ref)
		if strings.HasPrefix(ref, "sha256:") {
			d, raw = ref, h.content[ref]
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Docker-Content-Digest", d)
		w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(raw)
		}
	default:
		http.NotFound(w, r)
	}
}

// pullImage pulls name:tag over HTTP as a client does (manifest, then config and layers) and
// returns the manifest's digest.
func pullImage(t *testing.T, e *env, name, tag string) (string, error) {
	ctx := client.Context(t)
	body, _, digest, err := e.reg.Manifest(ctx, name, tag)
	if err != nil {
		return "", err
	}
	var m struct {
		Config struct{ Digest string }   `json:"config"`
		Layers []struct{ Digest string } `json:"layers"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return "", err
	}
	for _, d := range append([]string{m.Config.Digest}, m.Layers[0].Digest) {
		if _, err := e.reg.Blob(ctx, name, d); err != nil {
			return "", err
		}
	}
	return digest, nil
}

// TestUpstreamBudget runs the built server against an upstream with a pull budget, over
// HTTP and with skopeo: with the budget spent a moved tag is served from the cache without a
// GET and a new tag gets 429 TOOMANYREQUESTS with Retry-After; once the budget is back the
// moved tag is fresh; an upstream answering 503 opens the breaker (cached tags still served,
// to skopeo too, uncached ones 503 UNAVAILABLE, nothing sent upstream); upstream_status/
// shows each state, never the remote's password.
func TestUpstreamBudget(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		hub := newRateHub(t)
		e := startServer(t, eng, "", "--tag-freshness", "0", "--breaker-failures", "2", "--breaker-cooldown", "1h")
		e.createCache(t, cacheBase, cacheBase, hub.srv.URL, map[string]any{"username": "ci", "password": "hub-secret-1"}, nil)
		status := client.Str(e.api.byName(t, "/pulp/api/v3/remotes/container/pull-through/", cacheBase), "pulp_href") + "upstream_status/"
		const name = cacheBase + "/library/app"
		waitStatus := func(what string, ok func(st map[string]any) bool) {
			client.Poll(t, "upstream_status/ to show "+what, func() (bool, string) {
				status, raw := e.api.Do(t, http.MethodGet, status, nil)
				if strings.Contains(string(raw), "hub-secret-1") {
					t.Fatalf("upstream_status/ shows the remote's password: %s", raw)
				}
				st := client.DecodeObject(t, raw)
				return status == http.StatusOK && ok(st), string(raw)
			})
		}
		budget := func(st map[string]any) map[string]any { b, _ := st["budget"].(map[string]any); return b }

		first, err := pullImage(t, e, name, "latest")
		if err != nil {
			t.Fatal(err)
		}
		waitStatus("the reported budget", func(st map[string]any) bool {
			b := budget(st)
			return b != nil && b["limit"] == 100.0 && b["remaining"] == 99.0 && b["low"] == false
		})
		budgetFams := waitMetrics(t, e.srv.URL, "the reported budget", func(f families) bool {
			return sum(f, "pulpgo_upstream_budget_limit", nil) == 100 && sum(f, "pulpgo_upstream_budget_remaining", nil) == 99
		})
		for _, m := range budgetFams["pulpgo_upstream_budget_remaining"].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "key" && !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(l.GetValue()) {
					t.Errorf("budget key label %q is not 12 hex digits of the settings' MAC", l.GetValue())
				}
				if strings.Contains(l.GetValue(), "hub-secret-1") {
					t.Errorf("budget label %s=%q shows the remote's credentials", l.GetName(), l.GetValue())
				}
			}
		}

		hub.set(func(h *rateHub) { h.remaining = 0; h.epochs["latest"]++ })
		_, getsBefore := hub.counts()
		if d, err := pullImage(t, e, name, "latest"); err != nil || d != first {
			t.Fatalf("moved tag with the budget spent: %s, %v; want the cached %s", d, err, first)
		}
		skopeoStale := func(what, want string) {
			r, dir := skopeoCopy(t, e, name+":latest")
			r.Must(t)
			if got := fileDigest(t, filepath.Join(dir, "manifest.json")); got != want {
				t.Fatalf("skopeo copy %s: manifest %s, want %s", what, got, want)
			}
		}
		skopeoStale("with the budget spent", first)
		resp, err := e.reg.Request(client.Context(t), http.MethodGet, "/v2/"+name+"/manifests/never-pulled",
			http.Header{"Accept": {e.reg.ManifestAccept()}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("new tag with the budget spent: %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if _, gets := hub.counts(); gets != getsBefore {
			t.Fatalf("%d manifest GETs with the budget spent", gets-getsBefore)
		}
		waitStatus("the budget spent", func(st map[string]any) bool {
			b := budget(st)
			return b != nil && b["spent"] == true && b["low"] == true
		})

		hub.set(func(h *rateHub) { h.remaining = 80 })
		want := hub.current("latest")
		if d, err := pullImage(t, e, name, "latest"); err != nil || d != want {
			t.Fatalf("moved tag after the budget recovered: %s, %v; want the upstream's %s", d, err, want)
		}
		waitStatus("the budget recovered", func(st map[string]any) bool {
			b := budget(st)
			return b != nil && b["spent"] == false && b["low"] == false
		})

		hub.set(func(h *rateHub) { h.down = true })
		for range 2 {
			if d, err := pullImage(t, e, name, "latest"); err != nil || d != want {
				t.Fatalf("cached tag with the upstream down: %s, %v", d, err)
			}
		}
		waitStatus("the breaker open", func(st map[string]any) bool {
			br, _ := st["breaker"].(map[string]any)
			return br["state"] == "open" && br["consecutive_failures"] == 2.0 && br["retry_at"] != nil
		})
		waitMetrics(t, e.srv.URL, "the breaker open", func(f families) bool {
			return sum(f, "pulpgo_upstream_breaker_state", nil) == 2
		})
		before, _ := hub.counts()
		if d, err := pullImage(t, e, name, "latest"); err != nil || d != want {
			t.Fatalf("cached tag with the breaker open: %s, %v", d, err)
		}
		skopeoStale("with the breaker open", want)
		_, err = pullImage(t, e, name, "uncached")
		var re *client.RegistryError
		if !errors.As(err, &re) || re.Status != http.StatusServiceUnavailable || !strings.Contains(re.Body, "UNAVAILABLE") {
			t.Fatalf("uncached tag with the breaker open: %v, want 503 UNAVAILABLE", err)
		}
		if after, _ := hub.counts(); after != before {
			t.Fatalf("%d requests reached the upstream with the breaker open", after-before)
		}
	})
}
