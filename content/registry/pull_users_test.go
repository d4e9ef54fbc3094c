package registry

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/pulpgo/pulpgo/content/cacheonly"
	"github.com/pulpgo/pulpgo/content/htpasswd"
	"github.com/pulpgo/pulpgo/models"
)

// htpasswdFile writes an htpasswd file of users (name → password) in the form `htpasswd -B`
// writes ($2y$), replacing the file through a rename.
func htpasswdFile(t *testing.T, path string, users map[string]string) {
	t.Helper()
	var b strings.Builder
	for name, pass := range users {
		h := must(bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost))
		b.WriteString(name + ":$2y" + strings.TrimPrefix(string(h), "$2a") + "\n")
	}
	if err := os.WriteFile(path+".new", []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// pullUsers returns the users of an htpasswd file in a temporary directory, looked at on every
// use, and the file's path: carol (htpasswd only), alice and admin (also API users' names,
// with other passwords).
func pullUsers(t *testing.T) (*htpasswd.File, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "htpasswd")
	htpasswdFile(t, path, map[string]string{"carol": "carol-pass", "alice": "alice-htpasswd", "admin": "admin-htpasswd"})
	return must(htpasswd.Open(path, htpasswd.Options{CheckEvery: -1})), path
}

// TestPullUsersBasic: without token authentication, an htpasswd user logs in with Basic
// credentials and pulls public content and the images of private pull-through distributions
// (a child and a name below one); never private ordinary distributions, nor the namespace of
// an API user of the same name, nor the admin's rights for an entry named admin; never a push.
// A wrong password reads as any wrong password. The file is re-read while serving: a user
// added works, a user removed is refused.
func TestPullUsersBasic(t *testing.T) {
	f := newFixture(t)
	addUsers(t, f)
	users, path := pullUsers(t)
	srv := f.serve(t, Config{PullThrough: &fakePullThrough{}, PullUsers: users, LoginTTL: -1})
	carol := basicAuth("carol", "carol-pass")
	badLogin := errBody("UNAUTHORIZED", "Invalid username/password.", "", "")
	run(t, srv, []call{
		{name: "login", path: "/v2/", header: carol, status: 200},
		{name: "public", path: "/v2/test/manifests/latest", header: carol, status: 200},
		{name: "private pull-through child", path: "/v2/secret/hidden/tags/list", header: carol, status: 200},
		{name: "below a private pull-through", path: "/v2/secret/library/x/tags/list", header: carol, status: 200},
		{name: "private ordinary", path: "/v2/private/test/manifests/latest", header: carol, status: 401, code: "UNAUTHORIZED"},
		{name: "push", method: http.MethodPost, path: "/v2/carol/app/blobs/uploads/", header: carol, status: 401, code: "UNAUTHORIZED"},
		{name: "anonymous, private pull-through", path: "/v2/secret/hidden/tags/list", status: 401, code: "UNAUTHORIZED"},
		{name: "htpasswd alice, alice's namespace", path: "/v2/alice/app/manifests/latest", header: basicAuth("alice", "alice-htpasswd"), status: 401, code: "UNAUTHORIZED"},
		{name: "htpasswd alice, pull-through", path: "/v2/secret/hidden/tags/list", header: basicAuth("alice", "alice-htpasswd"), status: 200},
		{name: "htpasswd alice, push to alice", method: http.MethodPost, path: "/v2/alice/app/blobs/uploads/", header: basicAuth("alice", "alice-htpasswd"), status: 401, code: "UNAUTHORIZED"},
		{name: "API alice, own namespace", path: "/v2/alice/app/manifests/latest", header: basicAuth("alice", "alice-password"), status: 200},
		{name: "htpasswd admin, private ordinary", path: "/v2/private/test/manifests/latest", header: basicAuth("admin", "admin-htpasswd"), status: 401, code: "UNAUTHORIZED"},
		{name: "htpasswd admin, pull-through", path: "/v2/secret/hidden/tags/list", header: basicAuth("admin", "admin-htpasswd"), status: 200},
		{name: "wrong password", path: "/v2/", header: basicAuth("carol", "wrong"), status: 401, body: badLogin,
			headers: map[string]string{"WWW-Authenticate": basicChallenge}},
		{name: "no such user", path: "/v2/", header: basicAuth("nobody", "carol-pass"), status: 401, body: badLogin},
		{name: "API password is not the htpasswd one", path: "/v2/secret/hidden/tags/list", header: basicAuth("carol", "alice-password"), status: 401, body: badLogin},
	})
	t.Run("catalog", func(t *testing.T) {
		got := strings.Join(catalog(t, srv.URL, carol), " ")
		if want := "docker-cache/library/busybox empty pinned secret/hidden test"; got != want {
			t.Errorf("carol's catalog %q, want %q", got, want)
		}
	})

	// Without the file, carol is nobody.
	plain := f.serve(t, Config{PullThrough: &fakePullThrough{}, LoginTTL: -1})
	run(t, plain, []call{{name: "no htpasswd", path: "/v2/", header: carol, status: 401, body: badLogin}})

	htpasswdFile(t, path, map[string]string{"dave": "dave-pass"})
	run(t, srv, []call{
		{name: "added while running", path: "/v2/secret/hidden/tags/list", header: basicAuth("dave", "dave-pass"), status: 200},
		{name: "removed while running", path: "/v2/secret/hidden/tags/list", header: carol, status: 401, body: badLogin},
	})
}

// TestPullUsersTokens: with token authentication, an htpasswd user's token names it as such
// (subject "htpasswd:<name>"), grants pull on public names and on the images of private
// pull-through distributions, and nothing else: no push, no private ordinary distribution, no
// namespace of an API user of the same name. Its token stops working when the user leaves the
// file; a forged subject of that form names no API user.
func TestPullUsersTokens(t *testing.T) {
	tf := &tokenFixture{fixture: newFixture(t), key: newKey(t), pt: &fakePullThrough{}}
	tf.clock.Store(time.Now().Unix())
	users, path := pullUsers(t)
	tf.srv = tf.serve(t, Config{PullThrough: tf.pt, Tokens: tf.key, ResolveTTL: -1, LoginTTL: -1, PullUsers: users,
		Now: func() time.Time { return time.Unix(tf.clock.Load(), 0) }})
	addUsers(t, tf.fixture)
	carol := basicAuth("carol", "carol-pass")["Authorization"]

	scopes := []string{"repository:secret/hidden:pull", "repository:secret/library/x:pull", "repository:private/test:pull",
		"repository:carol/app:pull,push", "repository:test:pull,push", "repository:alice/app:pull", "repository:docker-cache/library/busybox:pull"}
	a := tf.getToken(t, carol, url.Values{"service": {tf.host()}, "scope": scopes}.Encode())
	want := `[{"actions":["pull"],"name":"secret/hidden","type":"repository"},` +
		`{"actions":["pull"],"name":"secret/library/x","type":"repository"},` +
		`{"actions":[],"name":"private/test","type":"repository"},` +
		`{"actions":[],"name":"carol/app","type":"repository"},` +
		`{"actions":["pull"],"name":"test","type":"repository"},` +
		`{"actions":[],"name":"alice/app","type":"repository"},` +
		`{"actions":["pull"],"name":"docker-cache/library/busybox","type":"repository"}]`
	if got := string(must(jsonMarshal(a.claims["access"]))); a.status != 200 || got != want {
		t.Fatalf("carol's grants %d\n%s\nwant\n%s", a.status, got, want)
	}
	if a.claims["sub"] != "htpasswd:carol" {
		t.Errorf("carol's token subject %v, want htpasswd:carol", a.claims["sub"])
	}
	htAlice := basicAuth("alice", "alice-htpasswd")["Authorization"]
	a = tf.getToken(t, htAlice, url.Values{"service": {tf.host()}, "scope": {"repository:alice/app:pull,push"}}.Encode())
	if got := string(must(jsonMarshal(a.claims["access"]))); got != `[{"actions":[],"name":"alice/app","type":"repository"}]` || a.claims["sub"] != "htpasswd:alice" {
		t.Errorf("htpasswd alice's grants on alice/app %s (subject %v), want none", got, a.claims["sub"])
	}
	htAdmin := basicAuth("admin", "admin-htpasswd")["Authorization"]
	a = tf.getToken(t, htAdmin, url.Values{"service": {tf.host()}, "scope": {"repository:private/test:pull", "repository:x/y:push"}}.Encode())
	if got := string(must(jsonMarshal(a.claims["access"]))); !strings.Contains(got, `"actions":[],"name":"private/test"`) || !strings.Contains(got, `"actions":[],"name":"x/y"`) {
		t.Errorf("htpasswd admin's grants %s, want none", got)
	}
	if a := tf.getToken(t, basicAuth("carol", "wrong")["Authorization"], "service="+tf.host()); a.status != 401 || a.body["detail"] != "Invalid username/password." {
		t.Errorf("wrong password at /token/: %d %v", a.status, a.body)
	}

	tok := tf.bearerFor(t, carol, "repository:secret/hidden:pull")
	login := tf.bearerFor(t, carol)
	run(t, tf.srv, []call{
		{name: "ping with the login token", path: "/v2/", header: login, status: 200},
		{name: "token pull", path: "/v2/secret/hidden/tags/list", header: tok, status: 200},
		{name: "Basic pull", path: "/v2/secret/hidden/tags/list", header: map[string]string{"Authorization": carol}, status: 200},
		{name: "Basic private ordinary", path: "/v2/private/test/tags/list", header: map[string]string{"Authorization": carol}, status: 401, code: "UNAUTHORIZED"},
		{name: "Basic push", method: http.MethodPost, path: "/v2/carol/app/blobs/uploads/", header: map[string]string{"Authorization": carol}, status: 401, code: "UNAUTHORIZED"},
		{name: "token push", method: http.MethodPost, path: "/v2/secret/hidden/blobs/uploads/", header: tok, status: 401, code: "UNAUTHORIZED"},
	})

	htpasswdFile(t, path, map[string]string{"dave": "dave-pass"})
	run(t, tf.srv, []call{{name: "removed user's token", path: "/v2/secret/hidden/tags/list", header: tok, status: 401,
		body: errBody("UNAUTHORIZED", "No such user", "", "")}})

	// A token with a pull-only subject from a server without the file names nobody.
	other := tf.serve(t, Config{PullThrough: tf.pt, Tokens: tf.key, ResolveTTL: -1, LoginTTL: -1,
		Now: func() time.Time { return time.Unix(tf.clock.Load(), 0) }})
	dave := tf.bearerFor(t, basicAuth("dave", "dave-pass")["Authorization"], "repository:secret/hidden:pull")
	req := must(http.NewRequest(http.MethodGet, other.URL+"/v2/secret/hidden/tags/list", nil))
	req.Host = tf.host() // the service the token was issued for
	req.Header.Set("Authorization", dave["Authorization"])
	resp := must(http.DefaultClient.Do(req))
	_ = resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("a pull-only token at a server without the file: %d, want 401", resp.StatusCode)
	}
}

// ctxPullThrough records whether each image was asked for in a cache-only context.
type ctxPullThrough struct {
	fakePullThrough
	mu        sync.Mutex
	cacheOnly []bool
}

func (p *ctxPullThrough) Image(ctx context.Context, pt *models.Distribution, upstreamName string) (Image, error) {
	p.note(ctx)
	return p.fakePullThrough.Image(ctx, pt, upstreamName)
}

func (p *ctxPullThrough) Child(ctx context.Context, child *models.Distribution) (Image, error) {
	p.note(ctx)
	return p.fakePullThrough.Child(ctx, child)
}

func (p *ctxPullThrough) note(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cacheOnly = append(p.cacheOnly, cacheonly.Is(ctx))
}

func (p *ctxPullThrough) last(t *testing.T) bool {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.cacheOnly) == 0 {
		t.Fatal("the pull-through cache was not asked")
	}
	return p.cacheOnly[len(p.cacheOnly)-1]
}

// TestFillsRequireAuth: with FillsRequireAuth, anonymous pulls (no credentials, empty Basic
// credentials, an anonymous token) reach the cache cache-only, through a prefix or as a
// registry mirror; users (API, admin, htpasswd) do not; without the setting nobody does. The
// cache's ErrAuthRequired is a 401 with the challenge.
func TestFillsRequireAuth(t *testing.T) {
	f := newFixture(t)
	users, _ := pullUsers(t)
	pt := &ctxPullThrough{}
	srv := f.serve(t, Config{PullThrough: pt, PullUsers: users, FillsRequireAuth: true, LoginTTL: -1,
		Mirrors: map[string]string{"docker.io": "docker-cache"}})
	for _, c := range []struct {
		name   string
		path   string
		header map[string]string
		want   bool
	}{
		{"anonymous child", "/v2/docker-cache/library/busybox/tags/list", nil, true},
		{"anonymous new name", "/v2/docker-cache/library/alpine/tags/list", nil, true},
		{"anonymous mirror name", "/v2/library/alpine/tags/list?ns=docker.io", nil, true},
		{"empty Basic credentials", "/v2/docker-cache/library/busybox/tags/list", basicAuth("", ""), true},
		{"admin", "/v2/docker-cache/library/busybox/tags/list", admin, false},
		{"htpasswd user", "/v2/docker-cache/library/alpine/tags/list", basicAuth("carol", "carol-pass"), false},
	} {
		run(t, srv, []call{{name: c.name, path: c.path, header: c.header, status: 200}})
		if got := pt.last(t); got != c.want {
			t.Errorf("%s: cache-only %v, want %v", c.name, got, c.want)
		}
	}
	plain := f.serve(t, Config{PullThrough: pt, LoginTTL: -1})
	run(t, plain, []call{{name: "without the setting", path: "/v2/docker-cache/library/busybox/tags/list", status: 200}})
	if pt.last(t) {
		t.Error("an anonymous pull without the setting was cache-only")
	}

	t.Run("token", func(t *testing.T) {
		tf := &tokenFixture{fixture: f, key: newKey(t), pt: &fakePullThrough{}}
		ptt := &ctxPullThrough{}
		tf.srv = tf.serve(t, Config{PullThrough: ptt, Tokens: tf.key, FillsRequireAuth: true, ResolveTTL: -1, LoginTTL: -1, PullUsers: users})
		anon := tf.bearerFor(t, "", "repository:docker-cache/library/busybox:pull")
		run(t, tf.srv, []call{{name: "anonymous token", path: "/v2/docker-cache/library/busybox/tags/list", header: anon, status: 200}})
		if !ptt.last(t) {
			t.Error("an anonymous token's pull was not cache-only")
		}
		user := tf.bearerFor(t, basicAuth("carol", "carol-pass")["Authorization"], "repository:docker-cache/library/busybox:pull")
		run(t, tf.srv, []call{{name: "htpasswd user's token", path: "/v2/docker-cache/library/busybox/tags/list", header: user, status: 200}})
		if ptt.last(t) {
			t.Error("an htpasswd user's pull was cache-only")
		}
	})

	t.Run("challenge", func(t *testing.T) {
		deny := f.serve(t, Config{PullThrough: &authRequired{}, FillsRequireAuth: true})
		run(t, deny, []call{{name: "not cached", path: "/v2/docker-cache/library/alpine/manifests/latest", status: 401,
			body:    errBody("UNAUTHORIZED", cacheonly.ErrAuthRequired.Message, "name", "docker-cache/library/alpine"),
			headers: map[string]string{"WWW-Authenticate": basicChallenge}}})
	})
}

// authRequired is a cache that holds nothing and may fetch nothing.
type authRequired struct{ fakePullThrough }

func (*authRequired) Image(_ context.Context, pt *models.Distribution, upstreamName string) (Image, error) {
	return nil, cacheonly.ErrAuthRequired.WithDetail("name", pt.BasePath+"/"+upstreamName)
}

// TestPullUsersMirror: as a registry mirror of a private pull-through distribution, an
// htpasswd user is granted and served the unprefixed names; anonymous callers are not.
func TestPullUsersMirror(t *testing.T) {
	tf := &tokenFixture{fixture: newFixture(t), key: newKey(t), pt: &fakePullThrough{}}
	users, _ := pullUsers(t)
	tf.srv = tf.serve(t, Config{PullThrough: tf.pt, Tokens: tf.key, ResolveTTL: -1, LoginTTL: -1, PullUsers: users,
		Mirrors: map[string]string{"docker.io": "secret"}})
	carol := basicAuth("carol", "carol-pass")["Authorization"]
	q := url.Values{"service": {tf.host()}, "scope": {"repository:library/x:pull"}}.Encode()
	if got := string(must(jsonMarshal(tf.getToken(t, carol, q).claims["access"]))); got != `[{"actions":["pull"],"name":"library/x","type":"repository"}]` {
		t.Errorf("carol's grant on a mirrored name %s, want pull", got)
	}
	if got := string(must(jsonMarshal(tf.getToken(t, "", q).claims["access"]))); got != `[{"actions":[],"name":"library/x","type":"repository"}]` {
		t.Errorf("anonymous grant on a mirrored private name %s, want none", got)
	}
	tok := tf.bearerFor(t, carol, "repository:library/x:pull")
	run(t, tf.srv, []call{{name: "mirror pull", path: "/v2/library/x/tags/list?ns=docker.io", header: tok, status: 200}})
	if calls := tf.pt.Calls(); len(calls) == 0 || calls[len(calls)-1] != "image secret library/x" {
		t.Errorf("pull-through calls %v, want the last one for secret/library/x", calls)
	}
}
