package security

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// privateAndPublic starts a server with a private pull-through distribution "priv" over one
// hostile upstream and a public one "pub" over another, whose image "x" exists but has none
// of priv's blobs.
func privateAndPublic(t *testing.T, eng testenv.Engine) (e *env, privUp, pubUp *hostile) {
	t.Helper()
	privUp, pubUp = startHostile(t), startHostile(t)
	pubUp.addImage("x", "1", nil, randomBytes(t, 1024))
	e = startServer(t, eng)
	e.createCache(t, "priv", privUp.url, nil, map[string]any{"private": true})
	e.createCache(t, "pub", pubUp.url, nil, nil)
	return e, privUp, pubUp
}

// TestFinding2BlobGrantAfterFill covers finding 2 (a) of issue 6: a client that asked for a
// private layer through a public pull-through name before it was stored (404) must still get
// 404 there after an authorized user pulled the private image (GET and HEAD), since the public
// name's upstream never had it. A public name whose own upstream has the layer may serve it.
func TestFinding2BlobGrantAfterFill(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		e, privUp, _ := privateAndPublic(t, eng)
		layer := randomBytes(t, 1<<20)
		p := privUp.addImage("team/p", "1", nil, layer)
		l := p.Layers[0]
		pubPath := "/v2/pub/x/blobs/" + l

		// Before the layer is stored: the public name's upstream does not have it.
		expectStatus(t, e.reg, http.MethodGet, pubPath, http.StatusNotFound, "BLOB_UNKNOWN")
		expectStatus(t, e.reg, http.MethodHead, pubPath, http.StatusNotFound)

		// An authorized pull of the private image stores the layer.
		expectStatus(t, e.reg, http.MethodGet, "/v2/priv/team/p/blobs/"+l, http.StatusUnauthorized, "UNAUTHORIZED")
		e.admin.mustPull(t, "priv/team/p", "1", p.Digest)

		// Stored now; the public name still may not read it, by GET or HEAD, nor may a public
		// name never asked before.
		for _, path := range []string{pubPath, "/v2/pub/other/blobs/" + l} {
			expectStatus(t, e.reg, http.MethodGet, path, http.StatusNotFound, "BLOB_UNKNOWN")
			expectStatus(t, e.reg, http.MethodHead, path, http.StatusNotFound)
		}
		expectStatus(t, e.reg, http.MethodGet, "/v2/priv/team/p/blobs/"+l, http.StatusUnauthorized, "UNAUTHORIZED")

		// The positive case: a public name whose own upstream has the layer may serve it.
		pub2Up := startHostile(t)
		pub2Up.addImage("y", "1", nil, layer)
		e.createCache(t, "pub2", pub2Up.url, nil, nil)
		if _, err := e.reg.Blob(client.Context(t), "pub2/y", l); err != nil {
			t.Errorf("a public name whose upstream has the layer: %v", err)
		}
		expectStatus(t, e.reg, http.MethodHead, "/v2/pub2/y/blobs/"+l, http.StatusOK)
	})
}

// TestFinding2JoinRunningFill covers finding 2 (b) of issue 6: while a slow fill of a private
// layer runs (the private upstream throttles it), an anonymous HEAD or GET of that digest
// through a public pull-through name whose upstream does not have it answers 404: it may not
// join the fill nor learn its length.
func TestFinding2JoinRunningFill(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		e, privUp, _ := privateAndPublic(t, eng)
		p := privUp.addImage("team/slow", "1", nil, randomBytes(t, 3<<20))
		l := p.Layers[0]
		ctx := client.Context(t)
		if _, _, _, err := e.admin.Manifest(ctx, "priv/team/slow", "1"); err != nil {
			t.Fatal(err)
		}

		privUp.throttle.Store(256 << 10) // 3 MiB take 12 s
		t.Cleanup(func() { privUp.throttle.Store(0) })
		done := make(chan error, 1)
		fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		go func() {
			_, err := e.admin.Blob(fctx, "priv/team/slow", l)
			done <- err
		}()
		client.Poll(t, "the private upstream to be asked for the layer", func() (bool, string) {
			return privUp.seenPath("/blobs/" + l), "no GET yet"
		})
		time.Sleep(300 * time.Millisecond) // let the fill learn the length

		pubPath := "/v2/pub/x/blobs/" + l
		expectStatus(t, e.reg, http.MethodHead, pubPath, http.StatusNotFound)
		hctx, hcancel := context.WithTimeout(ctx, 20*time.Second)
		n, err := e.reg.Blob(hctx, "pub/x", l)
		hcancel()
		if err == nil {
			t.Errorf("anonymous GET %s joined the private fill and read %d bytes", pubPath, n)
		} else if re, ok := err.(*client.RegistryError); !ok || re.Status != http.StatusNotFound {
			t.Errorf("anonymous GET %s while the private fill runs: %v, want 404", pubPath, err)
		}
		var adminErr error
		select {
		case adminErr = <-done:
			t.Errorf("the private fill ended (%v) before the checks were done: the test proves nothing", adminErr)
		default:
			privUp.throttle.Store(0)
			select {
			case adminErr = <-done:
			case <-time.After(time.Minute):
				t.Fatal("the admin's GET of the private layer did not end within a minute of the throttle's end")
			}
		}
		if adminErr != nil {
			t.Fatalf("the admin's GET of the private layer: %v", adminErr)
		}
		expectStatus(t, e.reg, http.MethodHead, pubPath, http.StatusNotFound)
		expectStatus(t, e.reg, http.MethodGet, pubPath, http.StatusNotFound, "BLOB_UNKNOWN")
	})
}
