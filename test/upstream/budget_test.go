package upstream_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/upstream"
)

// TestPullBudget: manifest GETs spend the budget and are refused with
// Docker Hub's 429 once it is spent, HEADs never spend and never fail, both
// carry the RateLimit headers, and a spent unit comes back after the window.
func TestPullBudget(t *testing.T) {
	t.Parallel()
	const limit, window = 3, 2 * time.Second
	u := start(t, upstream.Options{PullBudget: upstream.PullBudget{Limit: limit, Window: window}})
	imgs, err := u.PushMoving(t.Context(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	name := imgs[0].Name
	tok := token(t, u, name)
	tagURL := u.URL() + "/v2/" + name + "/manifests/" + upstream.MovingTag
	digestURL := u.URL() + "/v2/" + name + "/manifests/" + imgs[0].ManifestDigest
	accept := "Accept: " + upstream.MediaTypeDockerManifest
	checkHeaders := func(what string, resp *http.Response, left int) {
		t.Helper()
		if got, want := resp.Header.Get("RateLimit-Limit"), "3;w=2"; got != want {
			t.Errorf("%s: RateLimit-Limit = %q, want %q", what, got, want)
		}
		if got, want := resp.Header.Get("RateLimit-Remaining"), strconv.Itoa(left)+";w=2"; got != want {
			t.Errorf("%s: RateLimit-Remaining = %q, want %q", what, got, want)
		}
	}

	u.Reset()
	for i := range 5 {
		resp, _ := do(t, http.MethodHead, tagURL, tok, accept)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("HEAD %d: %s, want 200", i, resp.Status)
		}
		checkHeaders("HEAD before any GET", resp, limit)
	}
	for i, url := range []string{tagURL, digestURL, tagURL} { // by tag and by digest alike
		resp, body := do(t, http.MethodGet, url, tok, accept)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %d within the budget: %s %s", i+1, resp.Status, body)
		}
		checkHeaders("GET within the budget", resp, limit-1-i)
	}
	resp, body := do(t, http.MethodGet, tagURL, tok, accept)
	var e struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != http.StatusTooManyRequests ||
		len(e.Errors) != 1 || e.Errors[0].Code != "TOOMANYREQUESTS" || e.Errors[0].Message == "" {
		t.Fatalf("GET over the budget: %s %s, want 429 TOOMANYREQUESTS", resp.Status, body)
	}
	checkHeaders("GET over the budget", resp, 0)
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > 2 {
		t.Errorf("Retry-After = %q, want 1 or 2 seconds (the window is 2 s)", resp.Header.Get("Retry-After"))
	}
	resp, _ = do(t, http.MethodHead, tagURL, tok, accept)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != imgs[0].ManifestDigest {
		t.Errorf("HEAD with the budget spent: %s, digest %q; want 200 with %s", resp.Status, resp.Header.Get("Docker-Content-Digest"), imgs[0].ManifestDigest)
	}
	checkHeaders("HEAD with the budget spent", resp, 0)
	want := upstream.Counts{Requests: 10, ManifestHeads: 6, ManifestGets: 3, TooManyRequests: 1}
	if got := u.Counts(); got != want {
		t.Errorf("counts = %+v, want %+v", got, want)
	}
	if got := u.BudgetRemaining(); got != 0 {
		t.Errorf("BudgetRemaining = %d, want 0", got)
	}

	// The window rolls: the units come back on their own.
	pollFor(t, 10*time.Second, func() bool { return u.BudgetRemaining() == limit })
	if resp, _ := do(t, http.MethodGet, tagURL, tok, accept); resp.StatusCode != http.StatusOK {
		t.Errorf("GET after the window: %s, want 200", resp.Status)
	} else {
		checkHeaders("GET after the window", resp, limit-1)
	}

	u.RefillBudget()
	if got := u.BudgetRemaining(); got != limit {
		t.Errorf("BudgetRemaining after RefillBudget = %d, want %d", got, limit)
	}
}

// TestNoPullBudget: without a budget, manifest answers carry no RateLimit
// headers.
func TestNoPullBudget(t *testing.T) {
	t.Parallel()
	u := start(t, upstream.Options{})
	imgs, err := u.PushMoving(t.Context(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := do(t, http.MethodGet, u.URL()+"/v2/"+imgs[0].Name+"/manifests/"+upstream.MovingTag, token(t, u, imgs[0].Name),
		"Accept: "+upstream.MediaTypeDockerManifest)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("RateLimit-Limit") != "" || resp.Header.Get("RateLimit-Remaining") != "" {
		t.Errorf("GET without a budget: %s, RateLimit-Limit %q; want 200 and no RateLimit headers", resp.Status, resp.Header.Get("RateLimit-Limit"))
	}
	if got := u.BudgetRemaining(); got != -1 {
		t.Errorf("BudgetRemaining = %d, want -1", got)
	}
}

// pollFor checks cond every 20 ms until it holds, failing t after timeout.
func pollFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
