package roles

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
)

// TestSplitRolesTokens runs two content apps on one database, the second with its content
// origin set to the first (as two processes behind one address are): the second one's
// challenge sends clients to the first one's /token/, and the tokens the first signs with
// the key stored in the database are accepted by the second, which has no other way to know
// that key. The admin's token opens a private pull-through distribution; an anonymous token
// does not.
func TestSplitRolesTokens(t *testing.T) {
	ctx := t.Context()
	bin, up, img, common := splitSetup(t, 1, 1)
	a := harness.StartRole(t, bin, "api", common...)
	harness.StartRole(t, bin, "worker", common...)
	c1 := harness.StartRole(t, bin, "content", common...)
	c2 := harness.StartRole(t, bin, "content", append(append([]string{}, common...), "--content-origin", "http://"+c1.Addr)...)
	base := "http://" + a.Addr
	harness.WaitAPI(t, base)
	createCache(t, base, up.URL())
	var dists struct {
		Results []struct {
			Href string `json:"pulp_href"`
		} `json:"results"`
	}
	api(t, "GET", base+"/pulp/api/v3/distributions/container/pull-through/?name=hub", nil, &dists)
	if len(dists.Results) != 1 {
		t.Fatalf("pull-through distribution hub: %v", dists)
	}
	var task map[string]string
	if code := api(t, "PATCH", base+dists.Results[0].Href, map[string]any{"private": true}, &task); code != 202 {
		t.Fatalf("make hub private: %d %v", code, task)
	}
	waitTask(t, base, task["task"])
	harness.WaitContent(t, c1.Addr)
	harness.WaitContent(t, c2.Addr)

	const name = "hub/library/large"
	manifest := "/v2/" + name + "/manifests/latest"
	get := func(bearer string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c2.Addr+manifest, nil)
		req.Header.Set("Accept", img.MediaType)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := get("")
	ch := client.ParseChallenge(resp.Header.Get("WWW-Authenticate"))
	if resp.StatusCode != 401 || ch.Realm != "http://"+c1.Addr+"/token/" || ch.Service != c2.Addr ||
		len(ch.Scopes) != 1 || ch.Scopes[0] != "repository:"+name+":pull" {
		t.Fatalf("challenge of the second content app: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	anon := &client.Registry{HTTP: http.DefaultClient}
	tok, err := anon.Token(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	if resp := get(tok); resp.StatusCode != 401 || client.ParseChallenge(resp.Header.Get("WWW-Authenticate")).Error != "insufficient_scope" {
		t.Errorf("anonymous token on the private cache: %d %q, want 401 insufficient_scope", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	admin := &client.Registry{HTTP: http.DefaultClient, User: "admin", Pass: "password"}
	tok, err = admin.Token(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	if resp := get(tok); resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != img.ManifestDigest {
		t.Errorf("the first content app's admin token on the second: %d %q, want 200 %s", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), img.ManifestDigest)
	}
	// A token the first app issued for its own service is not for the second.
	own, err := admin.Token(ctx, client.Challenge{Realm: ch.Realm, Service: c1.Addr, Scopes: ch.Scopes})
	if err != nil {
		t.Fatal(err)
	}
	if resp := get(own); resp.StatusCode != 401 || client.ParseChallenge(resp.Header.Get("WWW-Authenticate")).Error != "invalid_token" {
		t.Errorf("a token for another service: %d %q, want 401 invalid_token", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	// The key both apps use is in the database, sealed.
	var stored []string
	db, err := models.Open(common[1], t.TempDir()) // common[1]: splitSetup's --database-url
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	}()
	if err := db.Table("token_keys").Pluck("private_key", &stored).Error; err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || !models.IsSealed(stored[0]) || strings.Contains(stored[0], "PRIVATE KEY") {
		t.Errorf("token_keys holds %q, want one sealed key", stored)
	}
}
