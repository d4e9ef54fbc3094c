package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// API paths used across the tests.
const (
	apiRoot            = "/pulp/api/v3/"
	remotesPath        = apiRoot + "remotes/container/container/"
	ptRemotesPath      = apiRoot + "remotes/container/pull-through/"
	reposPath          = apiRoot + "repositories/container/container/"
	distsPath          = apiRoot + "distributions/container/container/"
	ptDistsPath        = apiRoot + "distributions/container/pull-through/"
	namespacesPath     = apiRoot + "pulp_container/namespaces/"
	tasksPath          = apiRoot + "tasks/"
	missingID          = "00000000-0000-0000-0000-000000000000"
	taskDeadline       = 30 * time.Second
	taskPollInterval   = 10 * time.Millisecond
	requestTimeout     = 30 * time.Second
	maxErrorBodyLength = 2000
)

// binaryEnv names a variable that may hold a server binary to test instead of the one
// harness.Binary builds from the working tree.
const binaryEnv = "PULPGO_E2E_BINARY"

// env is one engine's server with a client home and a Go API client.
type env struct {
	engine testenv.Engine
	srv    *harness.Server
	home   *harness.Home
	api    *apiClient
}

// forEachEngine runs fn in a parallel subtest per engine, each with its own server and
// client home. t itself runs in parallel with the other top-level tests.
func forEachEngine(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	forEachEngineArgs(t, nil, fn)
}

// forEachEngineArgs is forEachEngine with more arguments of serve.
func forEachEngineArgs(t *testing.T, args []string, fn func(t *testing.T, e *env)) {
	t.Helper()
	needTools(t, "http", "jq", "curl", "pulp")
	t.Parallel()
	for _, engine := range testenv.Engines(t) {
		t.Run(engine.Name, func(t *testing.T) {
			t.Parallel()
			srv := harness.Start(t, harness.Options{Engine: engine, Binary: os.Getenv(binaryEnv), Args: args})
			fn(t, &env{
				engine: engine,
				srv:    srv,
				home:   harness.NewClientHome(t, srv),
				api:    newAPIClient(srv.URL, harness.Username, harness.Password),
			})
		})
	}
}

// needTools fails t when a client program is missing.
func needTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s is not installed; the end-to-end tests need httpie, jq, curl and pulp-cli", n)
		}
	}
}

// apiClient talks to the API with Go's HTTP client, as one user (or anonymously when user is
// empty).
type apiClient struct {
	base, user, password string
	http                 *http.Client
}

func newAPIClient(base, user, password string) *apiClient {
	return &apiClient{base: strings.TrimRight(base, "/"), user: user, password: password,
		http: &http.Client{
			Timeout: requestTimeout,
			// Report redirects instead of following them, as pulp-cli does.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}}
}

// response is one answer of the API.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a generic value, failing t when it is not JSON.
func (r response) json(t *testing.T) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("answer %d is not JSON (%v): %s", r.status, err, clip(r.body))
	}
	return v
}

// object decodes the body as a JSON object.
func (r response) object(t *testing.T) map[string]any {
	t.Helper()
	m, ok := r.json(t).(map[string]any)
	if !ok {
		t.Fatalf("answer %d is not a JSON object: %s", r.status, clip(r.body))
	}
	return m
}

// raw sends body (bytes are sent as they are, anything else as JSON) with contentType.
func (a *apiClient) raw(t *testing.T, method, path, contentType string, body any) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(enc)
	}
	url := path
	if !strings.HasPrefix(path, "http") {
		url = a.base + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if a.user != "" {
		req.SetBasicAuth(a.user, a.password)
	}
	if rd != nil && contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		t.Fatalf("%s %s: read the answer: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// do sends body as JSON (if not nil).
func (a *apiClient) do(t *testing.T, method, path string, body any) response {
	t.Helper()
	return a.raw(t, method, path, "application/json", body)
}

// expect sends a JSON request and fails t unless the answer has status want; it returns the
// decoded object (nil for an empty body).
func (a *apiClient) expect(t *testing.T, method, path string, body any, want int) map[string]any {
	t.Helper()
	r := a.do(t, method, path, body)
	if r.status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, clip(r.body))
	}
	if len(bytes.TrimSpace(r.body)) == 0 {
		return nil
	}
	return r.object(t)
}

// get reads an object (200).
func (a *apiClient) get(t *testing.T, path string) map[string]any {
	t.Helper()
	return a.expect(t, http.MethodGet, path, nil, http.StatusOK)
}

// count returns the count of a list endpoint.
func (a *apiClient) count(t *testing.T, path string) int {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	page := a.get(t, path+sep+"limit=1")
	n, ok := page["count"].(float64)
	if !ok {
		t.Fatalf("GET %s: no count in %v", path, page)
	}
	return int(n)
}

// find returns the objects of a list endpoint whose name is name.
func (a *apiClient) find(t *testing.T, path, name string) []map[string]any {
	t.Helper()
	page := a.get(t, path+"?name="+name)
	var out []map[string]any
	for _, r := range page["results"].([]any) {
		out = append(out, r.(map[string]any))
	}
	return out
}

// waitTask polls the task at href until it is in a final state (at most taskDeadline) and
// returns it; it fails t unless the state is completed.
func (a *apiClient) waitTask(t *testing.T, href string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(taskDeadline)
	tick := time.NewTicker(taskPollInterval)
	defer tick.Stop()
	for {
		task := a.get(t, href)
		switch task["state"] {
		case "completed":
			return task
		case "failed", "canceled", "skipped":
			t.Fatalf("task %s ended %v: %v", href, task["state"], task["error"])
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s still %v after %s", href, task["state"], taskDeadline)
		}
		<-tick.C
	}
}

// async sends a request that Pulp answers 202 with a task, waits for the task and returns it.
func (a *apiClient) async(t *testing.T, method, path string, body any) map[string]any {
	t.Helper()
	accepted := a.expect(t, method, path, body, http.StatusAccepted)
	href, _ := accepted["task"].(string)
	if len(accepted) != 1 || !strings.HasPrefix(href, tasksPath) {
		t.Fatalf("%s %s: 202 body %v, want exactly {\"task\": href}", method, path, accepted)
	}
	return a.waitTask(t, href)
}

// createdResource returns the single created resource of a completed task.
func createdResource(t *testing.T, task map[string]any) string {
	t.Helper()
	res, _ := task["created_resources"].([]any)
	if len(res) != 1 {
		t.Fatalf("task %v created %v, want one resource", task["pulp_href"], task["created_resources"])
	}
	return res[0].(string)
}

// wantFields fails t unless obj has each key of want with an equal (JSON-decoded) value.
func wantFields(t *testing.T, what string, obj map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		got, ok := obj[k]
		if !ok {
			t.Errorf("%s: no field %q in %v", what, k, obj)
			continue
		}
		if !reflect.DeepEqual(got, v) {
			t.Errorf("%s: %s = %#v, want %#v", what, k, got, v)
		}
	}
}

// decodeJSON parses s (a command's output) or fails t.
func decodeJSON(t *testing.T, what, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%s: output is not JSON (%v):\n%s", what, err, clip([]byte(s)))
	}
	return v
}

// jsonValue decodes a JSON literal, for expected values in tables.
func jsonValue(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad expected JSON %s: %v", s, err)
	}
	return v
}

// clip shortens a body for a message.
func clip(b []byte) string {
	if len(b) > maxErrorBodyLength {
		return string(b[:maxErrorBodyLength]) + fmt.Sprintf("... (%d bytes)", len(b))
	}
	return string(b)
}
