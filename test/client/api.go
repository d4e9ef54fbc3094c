package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/harness"
)

// API talks to the Pulp API (/pulp/api/v3/) of a server started by package harness, as its
// admin (harness.Username, harness.Password).
type API struct {
	// Base is the server's URL, without a trailing slash (harness.Server.URL).
	Base string
	// HTTP sends the requests (NewHTTPClient, usually).
	HTTP *http.Client
}

// Do sends a request with a JSON body (nil for none) and returns the status and body; it
// fails t only when no answer comes back (within 30 seconds).
func (a *API) Do(t testing.TB, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, a.Base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(harness.Username, harness.Password)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read the body: %v", method, path, err)
	}
	return resp.StatusCode, raw
}

// Get GETs path and fails t unless it answers 200 with a JSON object.
func (a *API) Get(t testing.TB, path string) map[string]any {
	t.Helper()
	status, raw := a.Do(t, http.MethodGet, path, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, raw)
	}
	return DecodeObject(t, raw)
}

// List GETs a list endpoint with the filters (and limit=1000) and returns its results.
func (a *API) List(t testing.TB, path string, filters url.Values) []map[string]any {
	t.Helper()
	q := url.Values{"limit": {"1000"}}
	for k, v := range filters {
		q[k] = v
	}
	obj := a.Get(t, path+"?"+q.Encode())
	res, ok := obj["results"].([]any)
	if !ok {
		t.Fatalf("GET %s?%s: no results list: %v", path, q.Encode(), obj)
	}
	out := make([]map[string]any, 0, len(res))
	for _, r := range res {
		m, ok := r.(map[string]any)
		if !ok {
			t.Fatalf("GET %s: result %v is not an object", path, r)
		}
		out = append(out, m)
	}
	return out
}

// WaitTask polls a task until it is completed (failing t when it fails, is canceled or is
// still running after WaitTimeout) and returns it.
func (a *API) WaitTask(t testing.TB, href string) map[string]any {
	t.Helper()
	if href == "" {
		t.Fatal("wait for a task: empty href")
	}
	var task map[string]any
	Poll(t, "task "+href+" to finish", func() (bool, string) {
		task = a.Get(t, href)
		switch s := Str(task, "state"); s {
		case "completed":
			return true, ""
		case "failed", "canceled":
			t.Fatalf("task %s %s: %v", href, s, task["error"])
		}
		return false, fmt.Sprintf("state %v", task["state"])
	})
	return task
}

// DecodeObject decodes a JSON object, failing t when raw is not one.
func DecodeObject(t testing.TB, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, raw)
	}
	return m
}

// Str returns m[k] as a string ("" when absent or not a string).
func Str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// CreatePullThrough creates a pull-through remote (name, url = upstreamURL, plus
// remoteExtra) and a pull-through distribution (name, base_path, remote, plus distExtra),
// waits for the distribution's task, and returns the distribution's href.
func (a *API) CreatePullThrough(t testing.TB, name, basePath, upstreamURL string, remoteExtra, distExtra map[string]any) string {
	t.Helper()
	body := map[string]any{"name": name, "url": upstreamURL}
	for k, v := range remoteExtra {
		body[k] = v
	}
	status, raw := a.Do(t, http.MethodPost, "/pulp/api/v3/remotes/container/pull-through/", body)
	if status != http.StatusCreated {
		t.Fatalf("create pull-through remote %s: %d %s", name, status, raw)
	}
	remote := DecodeObject(t, raw)
	body = map[string]any{"name": name, "base_path": basePath, "remote": Str(remote, "pulp_href")}
	for k, v := range distExtra {
		body[k] = v
	}
	status, raw = a.Do(t, http.MethodPost, "/pulp/api/v3/distributions/container/pull-through/", body)
	if status != http.StatusAccepted {
		t.Fatalf("create pull-through distribution %s: %d %s", name, status, raw)
	}
	task := a.WaitTask(t, Str(DecodeObject(t, raw), "task"))
	created, _ := task["created_resources"].([]any)
	if len(created) != 1 {
		t.Fatalf("distribution task created %v, want one distribution", task["created_resources"])
	}
	return created[0].(string)
}
