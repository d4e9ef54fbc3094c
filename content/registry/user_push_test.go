package registry

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// TestUserPush: with token authentication, the user alice pushes an image into her own
// namespace (alice/app: the push creates the namespace, the repository and the distribution)
// and pulls it back; her push to bob/app is refused with insufficient_scope and creates
// nothing; an anonymous push is challenged and creates nothing.
func TestUserPush(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		p := newPushEnv(t, e, func(c *Config) { c.Tokens, c.LoginTTL = newKey(t), -1 })
		for _, name := range []string{"alice", "bob"} {
			pw := name + "-password"
			if _, err := models.CreateUser(p.db, models.UserChanges{Username: &name, Password: &pw}); err != nil {
				t.Fatal(err)
			}
		}
		tf := &tokenFixture{srv: p.srv} // for its token requests only
		alice := basicAuth("alice", "alice-password")["Authorization"]
		own := tf.bearerFor(t, alice, "repository:alice/app:pull,push")

		cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}`)
		layer := randomBytes(t, 4000)
		for _, b := range [][]byte{cfg, layer} {
			resp, body := p.do(http.MethodPost, "/v2/alice/app/blobs/uploads/?digest="+oci.Digest(b), b, own)
			expect(t, "alice's upload", resp, body, http.StatusCreated, "")
		}
		m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}`,
			oci.MediaTypeOCIManifest, oci.Digest(cfg), len(cfg), oci.Digest(layer), len(layer)))
		resp, body := p.do(http.MethodPut, "/v2/alice/app/manifests/v1", m, map[string]string{
			"Authorization": own["Authorization"], "Content-Type": oci.MediaTypeOCIManifest})
		expect(t, "alice's manifest push", resp, body, http.StatusCreated, "")

		var ns, repos, dists int64
		p.db.Model(&models.Namespace{}).Where("name = ?", "alice").Count(&ns)
		p.db.Model(&models.Repository{}).Where("name = ?", "alice/app").Count(&repos)
		p.db.Model(&models.Distribution{}).Where("base_path = ?", "alice/app").Count(&dists)
		if ns != 1 || repos != 1 || dists != 1 {
			t.Fatalf("alice's push created %d namespaces, %d repositories, %d distributions", ns, repos, dists)
		}
		pull := tf.bearerFor(t, alice, "repository:alice/app:pull")
		resp, body = p.do(http.MethodGet, "/v2/alice/app/manifests/v1", nil, map[string]string{
			"Authorization": pull["Authorization"], "Accept": oci.MediaTypeOCIManifest})
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, m) {
			t.Fatalf("alice pulls her manifest: %d %s", resp.StatusCode, body)
		}
		resp, body = p.do(http.MethodGet, "/v2/alice/app/blobs/"+oci.Digest(layer), nil, pull)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, layer) {
			t.Fatalf("alice pulls her layer: %d", resp.StatusCode)
		}

		// Into bob's namespace: the token grants nothing there.
		other := tf.bearerFor(t, alice, "repository:bob/app:pull,push")
		resp, body = p.do(http.MethodPost, "/v2/bob/app/blobs/uploads/", nil, other)
		expect(t, "alice pushes to bob/app", resp, body, http.StatusUnauthorized, "UNAUTHORIZED")
		if ch := resp.Header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="insufficient_scope"`) ||
			!strings.Contains(ch, `scope="repository:bob/app:pull,push"`) {
			t.Errorf("challenge of alice's push to bob/app: %q", ch)
		}
		// With her own token, on bob's name.
		resp, body = p.do(http.MethodPut, "/v2/bob/app/manifests/v1", m, map[string]string{
			"Authorization": own["Authorization"], "Content-Type": oci.MediaTypeOCIManifest})
		expect(t, "alice's token on bob/app", resp, body, http.StatusUnauthorized, "UNAUTHORIZED")
		if ch := resp.Header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="insufficient_scope"`) {
			t.Errorf("challenge of alice's token on bob/app: %q", ch)
		}

		// Anonymous: without a token, and with an anonymous token.
		resp, body = p.do(http.MethodPost, "/v2/anon/app/blobs/uploads/", nil, map[string]string{"Authorization": ""})
		expect(t, "anonymous push", resp, body, http.StatusUnauthorized, "UNAUTHORIZED")
		if ch := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer ") || !strings.Contains(ch, `scope="repository:anon/app:pull,push"`) {
			t.Errorf("challenge of an anonymous push: %q", ch)
		}
		anon := tf.bearerFor(t, "", "repository:alice/app:pull,push")
		resp, body = p.do(http.MethodPost, "/v2/alice/app/blobs/uploads/", nil, anon)
		expect(t, "anonymous token push", resp, body, http.StatusUnauthorized, "UNAUTHORIZED")

		p.db.Model(&models.Distribution{}).Where("base_path IN ?", []string{"bob/app", "anon/app"}).Count(&dists)
		p.db.Model(&models.Namespace{}).Where("name IN ?", []string{"bob", "anon"}).Count(&ns)
		if dists != 0 || ns != 0 {
			t.Errorf("refused pushes created %d distributions, %d namespaces", dists, ns)
		}
	})
}
