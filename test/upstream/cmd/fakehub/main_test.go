package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"testing"
)

// startRun runs fakehub with args until the returned stop is called (which
// fails t if run returned an error), and returns its ready line.
func startRun(t *testing.T, args ...string) (ready, []byte, func()) {
	t.Helper()
	for _, tool := range []string{"docker-registry", "skopeo"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed; this test needs it (apt-get install -y docker-registry skopeo busybox-static): %v", tool, err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, pw, io.Discard)
		pw.Close()
	}()

	line, err := bufio.NewReader(pr).ReadBytes('\n')
	if err != nil {
		cancel()
		t.Fatalf("no ready line: %v (run: %v)", err, <-done)
	}
	go io.Copy(io.Discard, pr) // nothing more is expected; keep the writer unblocked
	var got ready
	if err := json.Unmarshal(line, &got); err != nil {
		cancel()
		t.Fatalf("ready line %s: %v", line, err)
	}
	return got, line, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}
}

func TestRun(t *testing.T) {
	got, line, stop := startRun(t, "-images", "small,debian,large", "-large-mib", "3", "-large-layers", "2")
	defer stop()
	for _, ref := range []string{"library/busybox:latest", "library/debian:10", "library/debian:11", "library/large:latest"} {
		if got.Digests[ref] == "" {
			t.Errorf("ready line has no digest for %s: %s", ref, line)
		}
	}
	if got.Digests["library/debian:10"] == got.Digests["library/debian:11"] {
		t.Errorf("debian 10 and 11 share the digest %s", got.Digests["library/debian:10"])
	}
	if n := len(got.Images); n != 4 || len(got.Images[3].Layers) != 2 {
		t.Errorf("images = %+v, want 4 with a large image of 2 layers", got.Images)
	}

	resp, err := http.Get(got.URL + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET %s/v2/: %s, want 401", got.URL, resp.Status)
	}
}

// TestRunFarm: -moving pushes the moving images and -budget shows in the
// counters.
func TestRunFarm(t *testing.T) {
	got, line, stop := startRun(t, "-images", "", "-moving", "2", "-move-every", "0", "-budget", "7", "-budget-window", "1h")
	defer stop()
	if len(got.Images) != 2 || got.Digests["library/farm-0:latest"] == "" || got.Digests["library/farm-1:latest"] == "" {
		t.Errorf("ready line %s: want the two moving images library/farm-0:latest and library/farm-1:latest", line)
	}
	resp, err := http.Get(got.Counts)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct {
		BudgetRemaining *int              `json:"budget_remaining"`
		Generation      *int              `json:"moving_generation"`
		Digests         map[string]string `json:"moving_digests"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.BudgetRemaining == nil || *c.BudgetRemaining != 7 || c.Generation == nil || *c.Generation != 0 {
		t.Errorf("counts: budget_remaining %v, moving_generation %v; want 7 and 0", c.BudgetRemaining, c.Generation)
	}
	if d := c.Digests["library/farm-1"]; d == "" || d != got.Digests["library/farm-1:latest"] {
		t.Errorf("counts: moving_digests %v, want library/farm-1 at %s", c.Digests, got.Digests["library/farm-1:latest"])
	}
}
