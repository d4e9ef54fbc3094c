package client

import (
	"net/http"
	"testing"

	"github.com/pulpgo/pulpgo/test/upstream"
)

// TestStartBudgetHub: the hub's moving images pull with the token flow, a manifest GET
// spends the budget and a HEAD does not, and MoveTags moves the tag.
func TestStartBudgetHub(t *testing.T) {
	hub := StartBudgetHub(t, 5, 0, 2, 0)
	if len(hub.Images) != 2 || hub.BudgetRemaining() != 5 {
		t.Fatalf("hub with %d images and %d budget left, want 2 and 5", len(hub.Images), hub.BudgetRemaining())
	}
	reg := &Registry{Base: hub.URL(), HTTP: NewHTTPClient()}
	img := hub.Images[1]
	_, _, digest, err := reg.Manifest(Context(t), img.Name, upstream.MovingTag)
	if err != nil || digest != img.ManifestDigest {
		t.Fatalf("GET %s: digest %s, %v; want %s", img.Ref(), digest, err, img.ManifestDigest)
	}
	for _, b := range img.Blobs() {
		if _, err := reg.Blob(Context(t), img.Name, b.Digest); err != nil {
			t.Errorf("blob %s: %v", b.Digest, err)
		}
	}
	moved, err := hub.MoveTags(Context(t))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := reg.Request(Context(t), http.MethodHead, "/v2/"+img.Name+"/manifests/"+upstream.MovingTag,
		http.Header{"Accept": {ManifestAccept}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Docker-Content-Digest"); got != moved[1].ManifestDigest || got == img.ManifestDigest {
		t.Errorf("HEAD after MoveTags: digest %s, want the new %s", got, moved[1].ManifestDigest)
	}
	if c := hub.Counts(); c.ManifestGets != 1 || c.ManifestHeads != 1 || hub.BudgetRemaining() != 4 {
		t.Errorf("counts %+v, budget left %d; want 1 manifest GET, 1 HEAD, 4 left", c, hub.BudgetRemaining())
	}
}
