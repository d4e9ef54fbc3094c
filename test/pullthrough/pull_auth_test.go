package pullthrough

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// writeHtpasswd writes an htpasswd file of users (name → password) as `htpasswd -B` does
// (bcrypt, $2y$), through a rename so that the server never reads half of it.
func writeHtpasswd(t testing.TB, path string, users map[string]string) {
	t.Helper()
	var b strings.Builder
	for name, pass := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(name + ":$2y" + strings.TrimPrefix(string(h), "$2a") + "\n")
	}
	if err := os.WriteFile(path+".new", []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// podmanHome is a client home of its own for e's server: podman storage, and a credentials
// file of its own (REGISTRY_AUTH_FILE), since podman and skopeo run as root otherwise share
// /run/containers/0/auth.json, and one home's login would be every home's.
func podmanHome(t testing.TB, e *env) *harness.Home {
	t.Helper()
	h := harness.NewClientHome(t, e.srv)
	ownAuthFile(t, h)
	h.PodmanEnv(t)
	return h
}

// ownAuthFile gives h a registry credentials file of its own, empty.
func ownAuthFile(t testing.TB, h *harness.Home) {
	t.Helper()
	path := filepath.Join(h.Dir, "auth.json")
	if err := os.WriteFile(path, []byte(`{"auths":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	h.ExtraEnv = append(h.ExtraEnv, "REGISTRY_AUTH_FILE="+path)
}

// TestPullAuth: with --htpasswd and --fills-require-auth, an htpasswd user logs in with podman
// and pulls through a private pull-through distribution with podman and skopeo; a wrong
// password is refused; the user may not push, nor use the API (httpie, pulp-cli). Anonymous
// podman pulls of a cached image work with no upstream request at all, even with the tag's
// freshness expired and the tag moved upstream; an uncached one fails with an auth error and
// asks the upstream nothing. The file is re-read while the server runs: a user added can log
// in, a user removed cannot.
func TestPullAuth(t *testing.T) {
	client.NeedTools(t, "podman", "skopeo", "http", "pulp")
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		hub := client.StartHub(t)
		busybox, err := hub.PushSmall(ctx, "library/busybox", "latest")
		if err != nil {
			t.Fatal(err)
		}
		alpine, err := hub.PushSmall(ctx, "library/alpine", "latest")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := hub.PushSmall(ctx, "library/debian", "latest"); err != nil {
			t.Fatal(err)
		}
		users := filepath.Join(t.TempDir(), "htpasswd")
		writeHtpasswd(t, users, map[string]string{"carol": "carol-pass"})
		e := startServer(t, eng, "", "--htpasswd", users, "--fills-require-auth", "--tag-freshness", "0")
		ownAuthFile(t, e.home) // skopeoCopy's
		e.createCache(t, "private-cache", "private-cache", hub.URL(), nil, map[string]any{"private": true})
		e.createCache(t, cacheBase, cacheBase, hub.URL(), nil, nil)
		carol := podmanHome(t, e)

		// podman login and pull through the private pull-through distribution.
		if r := carol.Run(t, "podman", "login", "--tls-verify=false", "-u", "carol", "-p", "wrong", e.srv.Addr); r.Code == 0 {
			t.Errorf("podman login with a wrong password succeeded")
		}
		carol.Run(t, "podman", "login", "--tls-verify=false", "-u", "carol", "-p", "carol-pass", e.srv.Addr).Must(t)
		carol.Run(t, "podman", "pull", "--tls-verify=false", e.srv.Addr+"/private-cache/library/busybox:latest").Must(t)
		mustSkopeoCopy(t, e, "private-cache/library/alpine:latest", alpine, "--src-creds", "carol:carol-pass")
		if r, _ := skopeoCopy(t, e, "private-cache/library/alpine:latest", "--src-creds", "carol:wrong"); r.Code == 0 {
			t.Errorf("skopeo copy with a wrong password succeeded")
		}
		if r, _ := skopeoCopy(t, e, "private-cache/library/alpine:latest"); r.Code == 0 {
			t.Errorf("anonymous skopeo copy from the private pull-through distribution succeeded")
		}

		// No push, anywhere.
		carol.Run(t, "podman", "tag", e.srv.Addr+"/private-cache/library/busybox:latest", e.srv.Addr+"/carol/app:1").Must(t)
		if r := carol.Run(t, "podman", "push", "--tls-verify=false", e.srv.Addr+"/carol/app:1"); r.Code == 0 {
			t.Errorf("an htpasswd user pushed into the namespace named after them")
		}
		if d := e.api.List(t, "/pulp/api/v3/distributions/container/container/", url.Values{"name": {"carol/app"}}); len(d) != 0 {
			t.Errorf("the refused push created %v", d)
		}

		// No API.
		r := carol.Run(t, "http", "--check-status", "--auth", "carol:carol-pass", e.srv.URL+"/pulp/api/v3/distributions/container/container/")
		if r.Code == 0 || !strings.Contains(r.Stderr+r.Stdout, "401") {
			t.Errorf("httpie with htpasswd credentials on the API: exit %d, %s%s; want a 401", r.Code, r.Stdout, r.Stderr)
		}
		if r := carol.Run(t, "pulp", "--username", "carol", "--password", "carol-pass", "container", "distribution", "list"); r.Code == 0 {
			t.Errorf("pulp-cli with htpasswd credentials listed distributions: %s", r.Stdout)
		}

		// Fills require a user: carol fills busybox through the public cache.
		const cached = cacheBase + "/library/busybox"
		carol.Run(t, "podman", "pull", "--tls-verify=false", e.srv.Addr+"/"+cached+":latest").Must(t)
		// The tag moves upstream; the freshness window is 0: a user's pull would ask.
		if _, err := hub.PushSmall(ctx, "library/busybox", "latest"); err != nil {
			t.Fatal(err)
		}
		before := hub.Counts()
		anon := podmanHome(t, e)
		anon.Run(t, "podman", "pull", "--tls-verify=false", e.srv.Addr+"/"+cached+":latest").Must(t)
		digest := strings.TrimSpace(anon.Run(t, "podman", "image", "inspect", "--format", "{{.Digest}}", e.srv.Addr+"/"+cached+":latest").Must(t).Stdout)
		if digest != busybox.ManifestDigest {
			t.Errorf("anonymous pull of the cached tag got %s, want the cached %s", digest, busybox.ManifestDigest)
		}
		r = anon.Run(t, "podman", "pull", "--tls-verify=false", e.srv.Addr+"/"+cacheBase+"/library/debian:latest")
		if r.Code == 0 || !strings.Contains(strings.ToLower(r.Stderr), "unauthorized") && !strings.Contains(strings.ToLower(r.Stderr), "authentication required") {
			t.Errorf("anonymous pull of an uncached image: exit %d, stderr %s; want an auth error", r.Code, r.Stderr)
		}
		if after := hub.Counts(); after != before {
			t.Errorf("anonymous pulls with fills requiring auth reached the upstream:\nbefore %+v\nafter  %+v", before, after)
		}
		if d := e.api.List(t, "/pulp/api/v3/distributions/container/container/", url.Values{"name": {cacheBase + "/library/debian"}}); len(d) != 0 {
			t.Errorf("an anonymous pull of an uncached image created %v", d)
		}
		// A user's pull of the uncached image asks the upstream and fills it.
		carol.Run(t, "podman", "pull", "--tls-verify=false", e.srv.Addr+"/"+cacheBase+"/library/debian:latest").Must(t)
		if after := hub.Counts(); after.ManifestHeads+after.ManifestGets == before.ManifestHeads+before.ManifestGets {
			t.Errorf("a user's pull of an uncached image did not reach the upstream")
		}

		// The file changes while the server runs: dave in, carol out.
		writeHtpasswd(t, users, map[string]string{"dave": "dave-pass"})
		waitLogin(t, e, "dave", "dave-pass", http.StatusOK)
		waitLogin(t, e, "carol", "carol-pass", http.StatusUnauthorized)
	})
}

// waitLogin asks /token/ with user's Basic credentials until it answers want (the server
// looks at the file at most once a second), failing t if it never does.
func waitLogin(t *testing.T, e *env, user, pass string, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/token/?service="+e.srv.Addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("login of %s after the file changed: %d, want %d", user, resp.StatusCode, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestHtpasswdMissing: a --htpasswd file that does not exist stops the start with a message
// naming the flag and the file.
func TestHtpasswdMissing(t *testing.T) {
	bin := harness.Binary(t)
	missing := filepath.Join(t.TempDir(), "no-such-htpasswd")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0",
		"--htpasswd", missing).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--htpasswd") || !strings.Contains(string(out), missing) {
		t.Errorf("start with a missing htpasswd file: err %v, output %q; want a refusal naming --htpasswd and the file", err, out)
	}
}

// TestPullAuthBasic: with token authentication off (HTTP Basic only, as Distribution's
// htpasswd auth), podman logs in with an htpasswd user and pulls through a private pull-through
// distribution; skopeo with a wrong password and anonymous skopeo are refused.
func TestPullAuthBasic(t *testing.T) {
	client.NeedTools(t, "podman", "skopeo")
	ctx := client.Context(t)
	hub := client.StartHub(t)
	busybox, err := hub.PushSmall(ctx, "library/busybox", "latest")
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(t.TempDir(), "htpasswd")
	writeHtpasswd(t, users, map[string]string{"carol": "carol-pass"})
	e := startServer(t, testenv.Embedded(), "", "--token-auth=false", "--htpasswd", users)
	ownAuthFile(t, e.home)
	e.createCache(t, cacheBase, cacheBase, hub.URL(), nil, map[string]any{"private": true})
	const ref = cacheBase + "/library/busybox:latest"
	if r, _ := skopeoCopy(t, e, ref); r.Code == 0 {
		t.Errorf("anonymous skopeo copy from the private pull-through distribution succeeded")
	}
	if r, _ := skopeoCopy(t, e, ref, "--src-creds", "carol:wrong"); r.Code == 0 {
		t.Errorf("skopeo copy with a wrong password succeeded")
	}
	mustSkopeoCopy(t, e, ref, busybox, "--src-creds", "carol:carol-pass")
	carol := podmanHome(t, e)
	carol.Run(t, "podman", "login", "--tls-verify=false", "-u", "carol", "-p", "carol-pass", e.srv.Addr).Must(t)
	carol.Run(t, "podman", "pull", "--tls-verify=false", e.srv.Addr+"/"+ref).Must(t)
}
