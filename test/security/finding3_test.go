package security

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// TestFinding3Schema1Poisoning covers finding 3 of issue 6: a hostile upstream answers
// manifests/sha256:X with a signed schema 1 body and Docker-Content-Digest: X, where X is the
// digest of another, real manifest. Pulling it by digest through a pull-through distribution
// must fail and store nothing under X; a later pull of X through another pull-through
// distribution over an honest upstream that has X gets the real bytes.
func TestFinding3Schema1Poisoning(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		honestUp, evilUp := startHostile(t), startHostile(t)
		real := honestUp.addImage("library/real", "1", nil, randomBytes(t, 4096))
		x := real.Digest
		planted, payloadDigest := schema1("evil/img", "latest", real.Layers[0])
		if payloadDigest == x {
			t.Fatal("the planted manifest has the real digest: impossible")
		}
		evilUp.addManifest("evil/img", planted, mediaTypeSchema1JWS, x, x, "latest")

		e := startServer(t, eng)
		e.createCache(t, "evil", evilUp.url, nil, nil)
		e.createCache(t, "honest", honestUp.url, nil, nil)

		for _, method := range []string{http.MethodGet, http.MethodHead} {
			a := e.reg.do(t, method, "/v2/evil/evil/img/manifests/"+x)
			if a.Status == http.StatusOK {
				t.Errorf("%s of the planted schema 1 manifest by the digest %s it does not have: 200 (%d bytes)", method, x, len(a.Body))
			} else {
				t.Logf("%s of the planted schema 1 manifest: %d %.200s", method, a.Status, a.Body)
			}
		}
		if !evilUp.seenPath("/manifests/" + x) {
			t.Fatalf("the hostile upstream was never asked for %s: the test proves nothing", x)
		}
		if _, err := os.Stat(blobFile(t, e, x)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("something was stored under %s (stat: %v)", x, err)
		}

		// The honest image: its real bytes, whose sha256 is X.
		for _, c := range []*regClient{e.reg, e.admin} {
			body, _, digest, err := c.Manifest(client.Context(t), "honest/library/real", x)
			if err != nil {
				t.Fatalf("pull honest/library/real@%s: %v", x, err)
			}
			if digest != x || !bytes.Equal(body, real.Manifest) {
				t.Errorf("pull honest/library/real@%s: got %d bytes hashing to %s, want the real manifest", x, len(body), digest)
			}
		}
		e.reg.mustPull(t, "honest/library/real", "1", x)
		if b, err := os.ReadFile(blobFile(t, e, x)); err != nil || client.Digest(b) != x {
			t.Errorf("stored under %s: %d bytes hashing to %s (%v)", x, len(b), client.Digest(b), err)
		}
	})
}

// TestFinding3Schema1Signed is the other side of finding 3: a correctly signed schema 1
// manifest, whose digest is the sha256 of its JWS payload (not of its bytes), is pulled by
// that digest and by tag, served byte for byte with Docker-Content-Digest set to the payload
// digest.
func TestFinding3Schema1Signed(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		up := startHostile(t)
		layer := up.addBlob("old/img", randomBytes(t, 2048))
		body, d := schema1("old/img", "v1", layer)
		up.addManifest("old/img", body, mediaTypeSchema1JWS, d, d, "v1")

		e := startServer(t, eng)
		e.createCache(t, "s1", up.url, nil, nil)
		for _, ref := range []string{d, "v1"} {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				a := e.reg.do(t, method, "/v2/s1/old/img/manifests/"+ref)
				if a.Status != http.StatusOK {
					t.Errorf("%s s1/old/img@%s: %d %.300s", method, ref, a.Status, a.Body)
					continue
				}
				if got := a.Header.Get("Docker-Content-Digest"); got != d {
					t.Errorf("%s s1/old/img@%s: Docker-Content-Digest %q, want the payload digest %s", method, ref, got, d)
				}
				if method == http.MethodGet && !bytes.Equal(a.Body, body) {
					t.Errorf("GET s1/old/img@%s: the body differs from the upstream's (%d bytes, want %d)", ref, len(a.Body), len(body))
				}
			}
		}
		if _, err := os.Stat(blobFile(t, e, d)); err != nil {
			t.Errorf("the signed schema 1 manifest is not stored under its payload digest %s: %v", d, err)
		}
	})
}
