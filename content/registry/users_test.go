package registry

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/models"
)

// basicAuth is the header of HTTP Basic credentials.
func basicAuth(user, pass string) map[string]string {
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}
}

// addUsers gives the fixture the users alice and bob, and private distributions in their
// namespaces (alice, alice/app, bob/app) serving the fixture's repository.
func addUsers(t *testing.T, f *fixture) {
	t.Helper()
	for _, name := range []string{"alice", "bob"} {
		pw := name + "-password"
		if _, err := models.CreateUser(f.db, models.UserChanges{Username: &name, Password: &pw}); err != nil {
			t.Fatal(err)
		}
	}
	for _, bp := range []string{"alice", "alice/app", "bob/app"} {
		f.dist(t, models.Distribution{BasePath: bp, RepositoryID: &f.repo.ID, Private: true})
	}
}

func TestNamespaceOwner(t *testing.T) {
	for _, c := range []struct {
		user, name string
		want       bool
	}{
		{"alice", "alice", true}, {"alice", "alice/app", true}, {"alice", "alice/a/b", true},
		{"alice", "alicex/app", false}, {"alice", "bob/alice", false}, {"", "alice", false}, {"", "", false},
		{"alice", "", false},
	} {
		if got := namespaceOwner(c.user, c.name); got != c.want {
			t.Errorf("namespaceOwner(%q, %q) = %v", c.user, c.name, got)
		}
	}
}

// TestUserBasicPull: without token authentication, every active user logs in with Basic
// credentials and pulls public content and the private content of their own namespace; another
// user's private content is refused, and so are wrong or deleted credentials.
func TestUserBasicPull(t *testing.T) {
	f := newFixture(t)
	addUsers(t, f)
	srv := f.serve(t, Config{LoginTTL: -1})
	alice := basicAuth("alice", "alice-password")
	run(t, srv, []call{
		{name: "login", path: "/v2/", header: alice, status: 200},
		{name: "own private", path: "/v2/alice/app/manifests/latest", header: alice, status: 200},
		{name: "own namespace root", path: "/v2/alice/tags/list", header: alice, status: 200},
		{name: "public", path: "/v2/test/manifests/latest", header: alice, status: 200},
		{name: "another's private", path: "/v2/bob/app/manifests/latest", header: alice, status: 401, code: "UNAUTHORIZED"},
		{name: "admin's private", path: "/v2/private/test/manifests/latest", header: alice, status: 401, code: "UNAUTHORIZED"},
		{name: "admin reads all", path: "/v2/bob/app/manifests/latest", header: admin, status: 200},
		{name: "wrong password", path: "/v2/test/manifests/latest", header: basicAuth("alice", "bob-password"), status: 401,
			body: errBody("UNAUTHORIZED", "Invalid username/password.", "", "")},
		{name: "admin password is not alice's", path: "/v2/", header: basicAuth("alice", adminPassword), status: 401},
	})
	t.Run("catalog", func(t *testing.T) {
		got := catalog(t, srv.URL, alice)
		want := []string{"alice", "alice/app", "docker-cache/library/busybox", "empty", "pinned", "test"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("alice's catalog %v, want %v", got, want)
		}
	})
	t.Run("deleted", func(t *testing.T) {
		u := must(models.GetUser(f.db, "2"))
		if err := models.DeleteUser(f.db, u); err != nil {
			t.Fatal(err)
		}
		run(t, srv, []call{{name: "login", path: "/v2/", header: alice, status: 401, code: "UNAUTHORIZED"}})
	})
}

// catalog returns the repositories of /v2/_catalog for header.
func catalog(t *testing.T, base string, header map[string]string) []string {
	t.Helper()
	req := must(http.NewRequest(http.MethodGet, base+"/v2/_catalog", nil))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp := must(http.DefaultClient.Do(req))
	defer func() { _ = resp.Body.Close() }()
	body := must(io.ReadAll(resp.Body))
	s := string(body)
	s = strings.TrimSuffix(strings.TrimPrefix(s, `{"repositories":[`), "]}\n")
	s = strings.TrimSuffix(s, "]}")
	var out []string
	for _, n := range strings.Split(s, ",") {
		if n != "" {
			out = append(out, strings.Trim(n, `"`))
		}
	}
	return out
}

// TestUserTokens: with token authentication, a user's /token/ login works, a token names the
// user, grants push (with pull) only in the user's own namespace, and pull of private content
// there; another user's private content is refused with insufficient_scope; a token whose user
// was deleted is refused with "No such user".
func TestUserTokens(t *testing.T) {
	tf := &tokenFixture{fixture: newFixture(t), key: newKey(t), pt: &fakePullThrough{}}
	tf.clock.Store(time.Now().Unix())
	tf.srv = tf.serve(t, Config{PullThrough: tf.pt, Tokens: tf.key, ResolveTTL: -1, LoginTTL: -1,
		Now: func() time.Time { return time.Unix(tf.clock.Load(), 0) }})
	addUsers(t, tf.fixture)
	alice := basicAuth("alice", "alice-password")["Authorization"]

	t.Run("login", func(t *testing.T) {
		a := tf.getToken(t, alice, "service="+tf.host()+"&account=alice")
		if a.status != 200 || a.claims["sub"] != "alice" || len(a.claims["access"].([]any)) != 0 {
			t.Fatalf("login token: %d %v %v", a.status, a.body, a.claims)
		}
		run(t, tf.srv, []call{{name: "ping", path: "/v2/", header: map[string]string{"Authorization": "Bearer " + a.body["token"].(string)}, status: 200}})
		for _, auth := range []string{basicAuth("alice", "wrong")["Authorization"], basicAuth("nobody", "alice-password")["Authorization"]} {
			if a := tf.getToken(t, auth, "service="+tf.host()); a.status != 401 || a.body["detail"] != "Invalid username/password." {
				t.Errorf("bad login: %d %v", a.status, a.body)
			}
		}
	})

	t.Run("grants", func(t *testing.T) {
		scopes := []string{"repository:alice/app:pull,push", "repository:alice/new:push", "repository:alice:pull",
			"repository:bob/app:pull,push", "repository:bob/app:pull", "repository:test:pull,push", "repository:alicex/app:push"}
		q := url.Values{"service": {tf.host()}, "scope": scopes}
		a := tf.getToken(t, alice, q.Encode())
		want := `[{"actions":["pull","push"],"name":"alice/app","type":"repository"},` +
			`{"actions":["pull","push"],"name":"alice/new","type":"repository"},` +
			`{"actions":["pull"],"name":"alice","type":"repository"},` +
			`{"actions":[],"name":"bob/app","type":"repository"},` +
			`{"actions":[],"name":"bob/app","type":"repository"},` +
			`{"actions":["pull"],"name":"test","type":"repository"},` +
			`{"actions":[],"name":"alicex/app","type":"repository"}]`
		if got := string(must(jsonMarshal(a.claims["access"]))); got != want {
			t.Errorf("alice's grants\n%s\nwant\n%s", got, want)
		}
		// The admin gets push everywhere.
		a = tf.getToken(t, admin["Authorization"], url.Values{"service": {tf.host()}, "scope": {"repository:bob/app:push"}}.Encode())
		if got := string(must(jsonMarshal(a.claims["access"]))); got != `[{"actions":["pull","push"],"name":"bob/app","type":"repository"}]` {
			t.Errorf("admin's grants %s", got)
		}
	})

	t.Run("pull", func(t *testing.T) {
		own := tf.bearerFor(t, alice, "repository:alice/app:pull")
		other := tf.bearerFor(t, alice, "repository:bob/app:pull")
		run(t, tf.srv, []call{
			{name: "own private", path: "/v2/alice/app/manifests/latest", header: own, status: 200},
			{name: "another's private", path: "/v2/bob/app/manifests/latest", header: other, status: 401, code: "UNAUTHORIZED",
				headers: map[string]string{"WWW-Authenticate": `Bearer realm="` + tf.srv.URL + `/token/",service="` + tf.host() +
					`",scope="repository:bob/app:pull",error="insufficient_scope"`}},
			// A user's Basic credentials without a token open what a token would.
			{name: "Basic, own private", path: "/v2/alice/app/manifests/latest", header: basicAuth("alice", "alice-password"), status: 200},
			{name: "Basic, ping", path: "/v2/", header: basicAuth("alice", "alice-password"), status: 200},
			{name: "Basic, another's private", path: "/v2/bob/app/manifests/latest", header: basicAuth("alice", "alice-password"),
				status: 401, code: "UNAUTHORIZED", headers: map[string]string{"WWW-Authenticate": `Bearer realm="` + tf.srv.URL + `/token/",service="` + tf.host() +
					`",scope="repository:bob/app:pull",error="insufficient_scope"`}},
			{name: "Basic, wrong password", path: "/v2/alice/app/manifests/latest", header: basicAuth("alice", "wrong"), status: 401, code: "UNAUTHORIZED"},
		})
	})

	t.Run("deleted user", func(t *testing.T) {
		tok := tf.bearerFor(t, alice, "repository:alice/app:pull")
		run(t, tf.srv, []call{{name: "before", path: "/v2/alice/app/manifests/latest", header: tok, status: 200}})
		u := must(models.GetUser(tf.db, "2"))
		if err := models.DeleteUser(tf.db, u); err != nil {
			t.Fatal(err)
		}
		run(t, tf.srv, []call{{name: "after", path: "/v2/alice/app/manifests/latest", header: tok, status: 401,
			body: errBody("UNAUTHORIZED", "No such user", "", "")}})
	})
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
