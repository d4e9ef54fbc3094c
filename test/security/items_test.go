package security

import (
	"net/http"
	"slices"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// TestNegativeCacheKeyedByCredentials covers the negative-cache item of issue 6 ("keyed by URL
// only"): two pull-through remotes with the same URL of an upstream that hides secret/img from
// anonymous tokens (404) and serves it to a token obtained with credentials. Distribution A's
// remote has no credentials, B's has them: a pull through A answers 404, and a pull through B
// right after it answers 200, by digest and by tag.
func TestNegativeCacheKeyedByCredentials(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		up := startHostile(t)
		img := up.addImage("secret/img", "1", nil, randomBytes(t, 1024))
		up.requireToken("puller", "s3cret", "secret/img")
		e := startServer(t, eng)
		e.createCache(t, "anon", up.url, nil, nil)
		e.createCache(t, "cred", up.url, map[string]any{"username": "puller", "password": "s3cret"}, nil)

		for _, ref := range []string{img.Digest, "1"} {
			expectStatus(t, e.reg, http.MethodGet, "/v2/anon/secret/img/manifests/"+ref, http.StatusNotFound,
				"NAME_UNKNOWN", "MANIFEST_UNKNOWN")
		}
		if !up.seenPath("/v2/secret/img/manifests/") {
			t.Fatal("the upstream was never asked for secret/img: the test proves nothing")
		}
		a := e.reg.do(t, http.MethodGet, "/v2/cred/secret/img/manifests/"+img.Digest)
		if a.Status != http.StatusOK || client.Digest(a.Body) != img.Digest {
			t.Errorf("GET cred/secret/img@%s right after the anonymous 404: %d %.200s, want 200 with the manifest", img.Digest, a.Status, a.Body)
		}
		e.reg.mustPull(t, "cred/secret/img", "1", img.Digest)
		// And the anonymous remote still gets nothing.
		expectStatus(t, e.reg, http.MethodGet, "/v2/anon/secret/img/manifests/1", http.StatusNotFound, "NAME_UNKNOWN", "MANIFEST_UNKNOWN")
	})
}

// TestAdoptionForeignRemote covers the adoption item of issue 6: a container remote named
// <base>/library/foo made by hand through the API, pointing at another upstream, is not
// adopted by the pull-through distribution <base>: pulling <base>/library/foo never asks the
// hand-made remote's upstream, and answers 404 instead of serving through it.
func TestAdoptionForeignRemote(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		honestUp, foreignUp := startHostile(t), startHostile(t)
		honestUp.addImage("library/foo", "1", nil, randomBytes(t, 1024))
		honestUp.addImage("library/foo", "2", nil, randomBytes(t, 1024))
		foreignUp.addImage("library/foo", "1", nil, randomBytes(t, 1024))
		foreignUp.addImage("library/foo", "2", nil, randomBytes(t, 1024))
		e := startServer(t, eng)
		e.createCache(t, "dh", honestUp.url, nil, nil)
		const name = "dh/library/foo"
		status, raw := e.api.Do(t, http.MethodPost, remotesPath, map[string]any{
			"name": name, "url": foreignUp.url, "upstream_name": "library/foo",
		})
		if status != http.StatusCreated {
			t.Fatalf("create the hand-made remote %s: %d %s", name, status, raw)
		}

		for _, ref := range []string{"1", "2"} {
			a := e.reg.do(t, http.MethodGet, "/v2/"+name+"/manifests/"+ref)
			if a.Status == http.StatusOK {
				// Fetch the blobs too, as a client would: through the adopted remote, if any.
				_, err := e.reg.pull(client.Context(t), name, ref)
				t.Errorf("GET %s:%s: 200, want 404 (the hand-made remote is not the cache's); full pull: %v", name, ref, err)
			} else if a.Status != http.StatusNotFound {
				t.Errorf("GET %s:%s: %d %.200s, want 404", name, ref, a.Status, a.Body)
			}
		}
		if n := foreignUp.count(); n != 0 {
			t.Errorf("the hand-made remote's upstream got %d requests: %v", n, foreignUp.seen())
		}
		if dists := e.api.names(t, distsPath); slices.Contains(dists, name) {
			t.Errorf("a distribution %s was created over the hand-made remote", name)
		}
		// The hand-made remote is left as it was.
		for _, r := range e.api.List(t, remotesPath, nil) {
			if client.Str(r, "name") == name && client.Str(r, "url") != foreignUp.url {
				t.Errorf("the hand-made remote's url is now %q", client.Str(r, "url"))
			}
		}
	})
}
