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

func TestRun(t *testing.T) {
	for _, tool := range []string{"docker-registry", "skopeo"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed; this test needs it (apt-get install -y docker-registry skopeo busybox-static): %v", tool, err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-images", "small,debian,large", "-large-mib", "3", "-large-layers", "2"}, pw, io.Discard)
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
		t.Fatalf("ready line %s: %v", line, err)
	}
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

	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}
