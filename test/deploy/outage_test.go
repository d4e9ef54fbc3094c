package deploy

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
	"github.com/pulpgo/pulpgo/test/upstream"
)

// outageDeadline is how long a request may take while a dependency is down before the test
// calls it hung: generous, not a measure of speed.
const outageDeadline = 30 * time.Second

// answer is one response, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// timedGet sends GET path through reg (the token flow included) and fails t if it has no
// answer within outageDeadline.
func timedGet(t *testing.T, reg *client.Registry, path string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), outageDeadline)
	defer cancel()
	start := time.Now()
	resp, err := reg.Request(ctx, http.MethodGet, path, http.Header{"Accept": {reg.ManifestAccept()}})
	if err != nil {
		t.Fatalf("GET %s: no answer within %s: %v", path, outageDeadline, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", path, err)
	}
	t.Logf("GET %s: %d in %s", path, resp.StatusCode, time.Since(start).Round(time.Millisecond))
	return answer{status: resp.StatusCode, header: resp.Header, body: body}
}

// wantRegistryUnavailable fails t unless a is the registry's 503 UNAVAILABLE with a
// Retry-After.
func wantRegistryUnavailable(t *testing.T, what string, a answer) {
	t.Helper()
	var eb client.ErrorBody
	_ = json.Unmarshal(a.body, &eb)
	if a.status != http.StatusServiceUnavailable || len(eb.Errors) == 0 || eb.Errors[0].Code != "UNAVAILABLE" || a.header.Get("Retry-After") == "" {
		t.Errorf("%s: %d %s (Retry-After %q), want 503 UNAVAILABLE with a Retry-After", what, a.status, a.body, a.header.Get("Retry-After"))
	}
}

// pullPaths are the registry paths a client GETs to pull im from the cache at base path bp.
func pullPaths(bp string, im upstream.Image) []string {
	paths := []string{"/v2/" + bp + "/" + im.Name + "/manifests/" + im.Tag}
	for _, b := range append([]upstream.Blob{*im.Config}, im.Layers...) {
		paths = append(paths, "/v2/"+bp+"/"+im.Name+"/blobs/"+b.Digest)
	}
	return paths
}

// TestContentOutages runs serve on PostgreSQL and Redis, each behind a proxy the test cuts:
//   - Redis gone: an image already in the cache pulls whole; a blob not in the cache answers
//     503 UNAVAILABLE (its fill needs the lock shared by content processes); /readyz 503,
//     /livez 200. Redis back, empty: the uncached image pulls.
//   - PostgreSQL gone: pulls answer 503 UNAVAILABLE, the API 503, its status 200 with
//     database_connection.connected false, /readyz 503 and /livez 200. Back: everything
//     answers again without a restart.
//
// No request may go unanswered for outageDeadline.
func TestContentOutages(t *testing.T) {
	ctx := client.Context(t)
	hub := client.StartHub(t)
	cached, err := hub.PushSmall(ctx, "library/busybox", "latest")
	if err != nil {
		t.Fatal(err)
	}
	uncached, err := hub.PushLarge(ctx, "library/big", "v1", 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	dbProxy, dbURL := testenv.ProxyURL(t, testenv.PostgresURL(t))
	directRedis := testenv.RedisURL(t)
	redisProxy, redisURL := testenv.ProxyURL(t, directRedis)
	srv := harness.Start(t, harness.Options{Engine: testenv.Engine{Name: "postgres", DatabaseURL: dbURL, RedisURL: redisURL}})
	api := &client.API{Base: srv.URL, HTTP: client.NewHTTPClient()}
	api.CreatePullThrough(t, "hub", "cache", hub.URL(), nil, nil)
	reg := &client.Registry{Base: srv.URL, HTTP: client.NewHTTPClient()}
	// bob has not logged in before the database goes: his credentials must be read from it.
	if status, raw := api.Do(t, http.MethodPost, "/pulp/api/v3/users/", map[string]any{"username": "bob", "password": "bob-Secret-1"}); status != http.StatusCreated {
		t.Fatalf("create user bob: %d %s", status, raw)
	}
	bob := &client.Registry{Base: srv.URL, HTTP: client.NewHTTPClient(), User: "bob", Pass: "bob-Secret-1", NoToken: true}
	probe := func(path string) int { return timedGet(t, reg, path).status }

	pull := func(im upstream.Image) {
		t.Helper()
		for _, p := range pullPaths("cache", im) {
			if a := timedGet(t, reg, p); a.status != http.StatusOK {
				t.Fatalf("GET %s: %d %s", p, a.status, a.body)
			}
		}
	}
	pull(cached)
	// The pull is recorded by a task: let it finish while Redis runs.
	client.Poll(t, "the record tasks of the first pull", func() (bool, string) {
		busy := api.List(t, "/pulp/api/v3/tasks/", map[string][]string{"state__in": {"waiting,running"}})
		return len(busy) == 0, "tasks still waiting or running"
	})

	// Redis gone.
	redisProxy.Cut()
	pull(cached)
	uncachedBlob := pullPaths("cache", uncached)[2]
	wantRegistryUnavailable(t, "an uncached blob with Redis gone", timedGet(t, reg, uncachedBlob))
	if code := probe("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with Redis gone: %d, want 503", code)
	}
	if code := probe("/livez"); code != http.StatusOK {
		t.Errorf("/livez with Redis gone: %d, want 200", code)
	}
	// Redis back, empty (a restart without persistence).
	opts, err := redis.ParseURL(directRedis)
	if err != nil {
		t.Fatal(err)
	}
	direct := redis.NewClient(opts)
	defer direct.Close()
	if err := direct.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	redisProxy.Restore()
	recovered(t, "an uncached pull after Redis came back", func() bool { return probe(uncachedBlob) == http.StatusOK })
	pull(uncached)

	// PostgreSQL gone.
	dbProxy.Cut()
	for _, p := range pullPaths("cache", cached)[:2] {
		wantRegistryUnavailable(t, p+" with the database gone", timedGet(t, reg, p))
	}
	// A login (the token endpoint, or Basic credentials on /v2/) is 503, not 401.
	// The token endpoint speaks DRF's format, as Pulp's token view: its ServiceUnavailable.
	tok := timedGet(t, bob, "/token/?service="+strings.TrimPrefix(srv.URL, "http://")+"&scope=repository:cache/library/busybox:pull")
	var detail struct{ Detail string }
	_ = json.Unmarshal(tok.body, &detail)
	if tok.status != http.StatusServiceUnavailable || detail.Detail != "Service temporarily unavailable, try again later." || tok.header.Get("Retry-After") == "" {
		t.Errorf("bob's token with the database gone: %d %s (Retry-After %q), want DRF's 503 with a Retry-After", tok.status, tok.body, tok.header.Get("Retry-After"))
	}
	wantRegistryUnavailable(t, "bob's /v2/ with the database gone", timedGet(t, bob, "/v2/"))
	if code := probe("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the database gone: %d, want 503", code)
	}
	if code := probe("/livez"); code != http.StatusOK {
		t.Errorf("/livez with the database gone: %d, want 200", code)
	}
	status, raw := api.Do(t, http.MethodGet, "/pulp/api/v3/repositories/container/container/", nil)
	if status != http.StatusServiceUnavailable {
		t.Errorf("API list with the database gone: %d %s, want 503", status, raw)
	}
	status, raw = api.Do(t, http.MethodGet, "/pulp/api/v3/status/", nil)
	if st := client.DecodeObject(t, raw); status != http.StatusOK || st["database_connection"].(map[string]any)["connected"] != false {
		t.Errorf("status with the database gone: %d %s, want 200 with database_connection.connected false", status, raw)
	}
	dbProxy.Restore()
	recovered(t, "a pull after the database came back", func() bool { return probe(pullPaths("cache", cached)[0]) == http.StatusOK })
	pull(cached)
	pull(uncached)
	if a := timedGet(t, bob, "/v2/"); a.status != http.StatusOK && a.status != http.StatusUnauthorized {
		t.Errorf("bob's /v2/ after the database came back: %d %s", a.status, a.body)
	}
	if code := probe("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after the outages: %d, want 200", code)
	}
}

// recovered waits until ok, failing t after outageDeadline; it logs how long that took.
func recovered(t *testing.T, what string, ok func() bool) {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > outageDeadline {
			t.Fatalf("%s: still failing %s after the service came back", what, outageDeadline)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%s: recovered %s after the service came back", what, time.Since(start).Round(time.Millisecond))
}
