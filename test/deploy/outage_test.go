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
	return timedDo(t, reg, http.MethodGet, path)
}

// timedDo is timedGet with another method.
func timedDo(t *testing.T, reg *client.Registry, method, path string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), outageDeadline)
	defer cancel()
	start := time.Now()
	resp, err := reg.Request(ctx, method, path, http.Header{"Accept": {reg.ManifestAccept()}})
	if err != nil {
		t.Fatalf("%s %s: no answer within %s: %v", method, path, outageDeadline, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	t.Logf("%s %s: %d in %s", method, path, resp.StatusCode, time.Since(start).Round(time.Millisecond))
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

// outageServe is serve on PostgreSQL and Redis, each behind a proxy the test cuts or
// freezes, caching a local Docker Hub at base path "cache" that holds two images: cached,
// pulled once (and recorded) by startOutageServe, and uncached, never pulled.
type outageServe struct {
	t                *testing.T
	srv              *harness.Server
	api              *client.API
	reg              *client.Registry
	db, redis        *testenv.Proxy
	directRedis      string // Redis's own URL, not through the proxy
	cached, uncached upstream.Image
}

// startOutageServe starts an outageServe; args are more serve flags.
func startOutageServe(t *testing.T, args ...string) *outageServe {
	t.Helper()
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
	o := &outageServe{t: t, cached: cached, uncached: uncached, directRedis: testenv.RedisURL(t)}
	var dbURL, redisURL string
	o.db, dbURL = testenv.ProxyURL(t, testenv.PostgresURL(t))
	o.redis, redisURL = testenv.ProxyURL(t, o.directRedis)
	o.srv = harness.Start(t, harness.Options{Engine: testenv.Engine{Name: "postgres", DatabaseURL: dbURL, RedisURL: redisURL}, Args: args})
	o.api = &client.API{Base: o.srv.URL, HTTP: client.NewHTTPClient()}
	o.api.CreatePullThrough(t, "hub", "cache", hub.URL(), nil, nil)
	o.reg = &client.Registry{Base: o.srv.URL, HTTP: client.NewHTTPClient()}
	o.pull(cached)
	// The pull is recorded by a task: let it finish while Redis runs.
	client.Poll(t, "the record tasks of the first pull", func() (bool, string) {
		busy := o.api.List(t, "/pulp/api/v3/tasks/", map[string][]string{"state__in": {"waiting,running"}})
		return len(busy) == 0, "tasks still waiting or running"
	})
	return o
}

// pull GETs im's manifest and blobs, failing the test unless each answers 200.
func (o *outageServe) pull(im upstream.Image) {
	o.t.Helper()
	for _, p := range pullPaths("cache", im) {
		if a := timedGet(o.t, o.reg, p); a.status != http.StatusOK {
			o.t.Fatalf("GET %s: %d %s", p, a.status, a.body)
		}
	}
}

// probe is the status code of GET path.
func (o *outageServe) probe(path string) int { return timedGet(o.t, o.reg, path).status }

// wantProbes fails the test unless /readyz answers ready and /livez 200.
func (o *outageServe) wantProbes(what string, ready int) {
	o.t.Helper()
	if code := o.probe("/readyz"); code != ready {
		o.t.Errorf("/readyz %s: %d, want %d", what, code, ready)
	}
	if code := o.probe("/livez"); code != http.StatusOK {
		o.t.Errorf("/livez %s: %d, want 200 (the process is alive)", what, code)
	}
}

// restoreRedisEmpty brings Redis back empty, as a restarted server without persistence.
func (o *outageServe) restoreRedisEmpty() {
	o.t.Helper()
	opts, err := redis.ParseURL(o.directRedis)
	if err != nil {
		o.t.Fatal(err)
	}
	direct := redis.NewClient(opts)
	defer direct.Close()
	if err := direct.FlushDB(o.t.Context()).Err(); err != nil {
		o.t.Fatal(err)
	}
	o.redis.Restore()
}

// wantDatabaseDown checks what the server answers while its database does not: pulls
// 503 UNAVAILABLE, the API 503, status 200 with database_connection.connected false.
func (o *outageServe) wantDatabaseDown() {
	t := o.t
	t.Helper()
	for _, p := range pullPaths("cache", o.cached)[:2] {
		wantRegistryUnavailable(t, p+" with the database down", timedGet(t, o.reg, p))
	}
	start := time.Now()
	status, raw := o.api.Do(t, http.MethodGet, "/pulp/api/v3/repositories/container/container/", nil)
	if time.Since(start) > outageDeadline {
		t.Errorf("API list hung with the database down: %s", time.Since(start))
	}
	if status != http.StatusServiceUnavailable {
		t.Errorf("API list with the database down: %d %s, want 503", status, raw)
	}
	status, raw = o.api.Do(t, http.MethodGet, "/pulp/api/v3/status/", nil)
	if st := client.DecodeObject(t, raw); status != http.StatusOK || st["database_connection"].(map[string]any)["connected"] != false {
		t.Errorf("status with the database down: %d %s, want 200 with database_connection.connected false", status, raw)
	}
}

// TestContentOutages runs serve on PostgreSQL and Redis, each behind a proxy the test cuts:
//   - Redis gone: an image already in the cache pulls whole; a blob not in the cache answers
//     503 UNAVAILABLE (its fill needs the lock shared by content processes); /readyz 503,
//     /livez 200. Redis back, empty: the uncached image pulls.
//   - PostgreSQL gone: pulls answer 503 UNAVAILABLE, a user's first login (token or Basic)
//     503 rather than 401, the API 503, its status 200 with database_connection.connected
//     false, /readyz 503 and /livez 200. Back: everything answers again without a restart.
//
// No request may go unanswered for outageDeadline.
func TestContentOutages(t *testing.T) {
	o := startOutageServe(t)
	// bob has not logged in before the database goes: his credentials must be read from it.
	if status, raw := o.api.Do(t, http.MethodPost, "/pulp/api/v3/users/", map[string]any{"username": "bob", "password": "bob-Secret-1"}); status != http.StatusCreated {
		t.Fatalf("create user bob: %d %s", status, raw)
	}
	bob := &client.Registry{Base: o.srv.URL, HTTP: client.NewHTTPClient(), User: "bob", Pass: "bob-Secret-1", NoToken: true}

	o.redis.Cut()
	o.pull(o.cached)
	uncachedBlob := pullPaths("cache", o.uncached)[2]
	wantRegistryUnavailable(t, "an uncached blob with Redis gone", timedGet(t, o.reg, uncachedBlob))
	o.wantProbes("with Redis gone", http.StatusServiceUnavailable)
	o.restoreRedisEmpty()
	recovered(t, "an uncached pull after Redis came back", func() bool { return o.probe(uncachedBlob) == http.StatusOK })
	o.pull(o.uncached)

	o.db.Cut()
	o.wantDatabaseDown()
	// A login (the token endpoint, or Basic credentials on /v2/) is 503, not 401; the token
	// endpoint speaks DRF's format, as Pulp's token view: its ServiceUnavailable.
	tok := timedGet(t, bob, "/token/?service="+strings.TrimPrefix(o.srv.URL, "http://")+"&scope=repository:cache/library/busybox:pull")
	var detail struct{ Detail string }
	_ = json.Unmarshal(tok.body, &detail)
	if tok.status != http.StatusServiceUnavailable || detail.Detail != "Service temporarily unavailable, try again later." || tok.header.Get("Retry-After") == "" {
		t.Errorf("bob's token with the database gone: %d %s (Retry-After %q), want DRF's 503 with a Retry-After", tok.status, tok.body, tok.header.Get("Retry-After"))
	}
	wantRegistryUnavailable(t, "bob's /v2/ with the database gone", timedGet(t, bob, "/v2/"))
	admin := &client.Registry{Base: o.srv.URL, HTTP: client.NewHTTPClient(), User: harness.Username, Pass: harness.Password}
	wantRegistryUnavailable(t, "the admin's push with the database gone", timedDo(t, admin, http.MethodPost, "/v2/team/pushed/blobs/uploads/"))
	o.wantProbes("with the database gone", http.StatusServiceUnavailable)
	o.db.Restore()
	recovered(t, "a pull after the database came back", func() bool { return o.probe(pullPaths("cache", o.cached)[0]) == http.StatusOK })
	o.pull(o.cached)
	o.pull(o.uncached)
	if a := timedGet(t, bob, "/v2/"); a.status != http.StatusOK && a.status != http.StatusUnauthorized {
		t.Errorf("bob's /v2/ after the database came back: %d %s", a.status, a.body)
	}
	o.wantProbes("after the outages", http.StatusOK)
}

// TestContentFrozenDependencies runs serve as TestContentOutages, but its PostgreSQL and
// Redis hang instead: they accept connections and read, and never answer. With
// --database-timeout 2s, pulls and the API answer 503 rather than hang, status and readyz
// say the database is down; a frozen Redis still lets the cached image pull (holds give up
// within their budget) and an uncached blob answers 503 after go-redis's read timeouts.
// Both come back without a restart.
func TestContentFrozenDependencies(t *testing.T) {
	o := startOutageServe(t, "--database-timeout", "2s")

	o.redis.Freeze()
	o.pull(o.cached)
	uncachedBlob := pullPaths("cache", o.uncached)[2]
	wantRegistryUnavailable(t, "an uncached blob with Redis frozen", timedGet(t, o.reg, uncachedBlob))
	o.wantProbes("with Redis frozen", http.StatusServiceUnavailable)
	o.redis.Restore()
	recovered(t, "an uncached pull after Redis thawed", func() bool { return o.probe(uncachedBlob) == http.StatusOK })
	o.pull(o.uncached)

	o.db.Freeze()
	o.wantDatabaseDown()
	o.wantProbes("with the database frozen", http.StatusServiceUnavailable)
	o.db.Restore()
	recovered(t, "a pull after the database thawed", func() bool { return o.probe(pullPaths("cache", o.cached)[0]) == http.StatusOK })
	o.pull(o.cached)
	o.wantProbes("after the freezes", http.StatusOK)
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
