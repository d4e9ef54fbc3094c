package registry

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/content/token"
	"github.com/pulpgo/pulpgo/models"
)

// tokenFixture serves the fixture with token authentication, on a clock the test moves.
type tokenFixture struct {
	*fixture
	srv   *httptest.Server
	key   *token.Key
	clock atomic.Int64 // seconds since the epoch
	pt    *fakePullThrough
}

func newKey(t *testing.T) *token.Key {
	t.Helper()
	k, err := token.ParseKey(must(token.GenerateKey()))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newTokenFixture(t *testing.T, origin string) *tokenFixture {
	t.Helper()
	tf := &tokenFixture{fixture: newFixture(t), key: newKey(t), pt: &fakePullThrough{}}
	tf.clock.Store(time.Now().Unix())
	// No name cache: a distribution made private is seen at once.
	tf.srv = tf.serve(t, Config{PullThrough: tf.pt, Tokens: tf.key, ContentOrigin: origin, ResolveTTL: -1,
		Now: func() time.Time { return time.Unix(tf.clock.Load(), 0) }})
	return tf
}

func (tf *tokenFixture) host() string { return strings.TrimPrefix(tf.srv.URL, "http://") }

// tokenAnswer is a decoded GET /token/ answer.
type tokenAnswer struct {
	status int
	header http.Header
	body   map[string]any
	claims map[string]any
}

// getToken asks GET /token/ with query and, when auth is set, that Authorization header.
func (tf *tokenFixture) getToken(t *testing.T, auth string, query string) tokenAnswer {
	t.Helper()
	req := must(http.NewRequest(http.MethodGet, tf.srv.URL+"/token/?"+query, nil))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := tf.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	a := tokenAnswer{status: resp.StatusCode, header: resp.Header}
	if err := json.NewDecoder(resp.Body).Decode(&a.body); err != nil {
		t.Fatalf("token answer %d: %v", resp.StatusCode, err)
	}
	if s, ok := a.body["token"].(string); ok {
		parts := strings.Split(s, ".")
		if err := json.Unmarshal(must(base64.RawURLEncoding.DecodeString(parts[1])), &a.claims); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// bearerFor returns the Authorization header of a token asked for with scopes by auth.
func (tf *tokenFixture) bearerFor(t *testing.T, auth string, scopes ...string) map[string]string {
	t.Helper()
	q := url.Values{"service": {tf.host()}, "scope": scopes}
	a := tf.getToken(t, auth, q.Encode())
	if a.status != 200 {
		t.Fatalf("token for %v: %d %v", scopes, a.status, a.body)
	}
	return map[string]string{"Authorization": "Bearer " + a.body["token"].(string)}
}

func TestTokenEndpoint(t *testing.T) {
	tf := newTokenFixture(t, "")
	host := tf.host()
	adminAuth := admin["Authorization"]

	t.Run("answer", func(t *testing.T) {
		a := tf.getToken(t, "", "service="+host+"&account=admin&client_id=podman")
		if a.status != 200 || a.body["token"] == nil || a.body["token"] != a.body["access_token"] || a.body["expires_in"] != 300.0 {
			t.Fatalf("answer %d %v", a.status, a.body)
		}
		if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`).MatchString(a.body["issued_at"].(string)) {
			t.Errorf("issued_at %q", a.body["issued_at"])
		}
		if a.header.Get("Content-Type") != "application/json" || a.header.Get("Cache-Control") != "no-store" {
			t.Errorf("headers %v", a.header)
		}
		c := a.claims
		if c["sub"] != "" || c["aud"] != host || c["iss"] != tf.srv.URL+"/token/" || c["exp"].(float64)-c["iat"].(float64) != 300 ||
			c["nbf"] != c["iat"] || len(c["access"].([]any)) != 0 || c["jti"] == "" {
			t.Errorf("claims %v", c)
		}
		if a := tf.getToken(t, adminAuth, "service="+host); a.claims["sub"] != "admin" {
			t.Errorf("admin token sub %v", a.claims["sub"])
		}
		// An empty service gets a token no request can use (aud is never an empty Host), as in Pulp.
		if a := tf.getToken(t, "", "service="); a.status != 200 || a.claims["aud"] != "" {
			t.Errorf("empty service: %d, aud %v", a.status, a.claims["aud"])
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for _, c := range []struct {
			name, auth, query, detail, challenge string
			status                               int
		}{
			{name: "no service", query: "scope=repository:test:pull", status: 400, detail: "No service name provided."},
			// DRF's Basic authentication on /token/ reads empty credentials as wrong, as Pulp.
			{name: "empty credentials", auth: "Basic Og==", query: "service=" + host,
				status: 401, detail: "Invalid username/password.", challenge: `Basic realm="api"`},
			{name: "wrong password", auth: "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:nope")), query: "service=" + host,
				status: 401, detail: "Invalid username/password.", challenge: `Basic realm="api"`},
			{name: "unknown user", auth: "Basic " + base64.StdEncoding.EncodeToString([]byte("bob:"+adminPassword)), query: "service=" + host,
				status: 401, detail: "Invalid username/password.", challenge: `Basic realm="api"`},
			{name: "broken basic header", auth: "Basic !!!", query: "service=" + host, status: 401, detail: "Invalid username/password."},
			{name: "too many scopes", query: "service=" + host + strings.Repeat("&scope=repository:test:pull", maxScopes+1), status: 400,
				detail: "Too many scopes: 65, at most 64."},
		} {
			t.Run(c.name, func(t *testing.T) {
				a := tf.getToken(t, c.auth, c.query)
				if a.status != c.status || a.body["detail"] != c.detail || a.body["token"] != nil {
					t.Errorf("%d %v, want %d %q", a.status, a.body, c.status, c.detail)
				}
				if c.challenge != "" && a.header.Get("WWW-Authenticate") != c.challenge {
					t.Errorf("WWW-Authenticate %q", a.header.Get("WWW-Authenticate"))
				}
			})
		}
		resp := must(tf.srv.Client().Post(tf.srv.URL+"/token/?service="+host, "text/plain", nil))
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 405 || string(body) != `{"detail":"Method \"POST\" not allowed."}` {
			t.Errorf("POST: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("grants", func(t *testing.T) {
		for _, c := range []struct {
			auth   string
			scopes []string
			want   string // the access claim
		}{
			{"", []string{"repository:test:pull"}, `[{"actions":["pull"],"name":"test","type":"repository"}]`},
			{"", []string{"repository:private/test:pull"}, `[{"actions":[],"name":"private/test","type":"repository"}]`},
			{adminAuth, []string{"repository:private/test:pull"}, `[{"actions":["pull"],"name":"private/test","type":"repository"}]`},
			// Anonymous pulls through a public pull-through distribution, child or not yet.
			{"", []string{"repository:docker-cache/library/alpine:pull"}, `[{"actions":["pull"],"name":"docker-cache/library/alpine","type":"repository"}]`},
			{"", []string{"repository:docker-cache/library/busybox:pull"}, `[{"actions":["pull"],"name":"docker-cache/library/busybox","type":"repository"}]`},
			{"", []string{"repository:secret/alpine:pull"}, `[{"actions":[],"name":"secret/alpine","type":"repository"}]`},
			{"", []string{"repository:secret/hidden:pull"}, `[{"actions":[],"name":"secret/hidden","type":"repository"}]`},
			{adminAuth, []string{"repository:secret/hidden:pull"}, `[{"actions":["pull"],"name":"secret/hidden","type":"repository"}]`},
			{"", []string{"repository:nothere:pull"}, `[{"actions":[],"name":"nothere","type":"repository"}]`},
			{adminAuth, []string{"repository:nothere:pull"}, `[{"actions":["pull"],"name":"nothere","type":"repository"}]`},
			{"", []string{"repository:Bad..Name:pull"}, `[{"actions":[],"name":"Bad..Name","type":"repository"}]`},
			{"", []string{"repository:test:push"}, `[{"actions":[],"name":"test","type":"repository"}]`},
			{"", []string{"repository:test:pull,push"}, `[{"actions":["pull"],"name":"test","type":"repository"}]`},
			{"", []string{"repository:private/test:pull,push"}, `[{"actions":[],"name":"private/test","type":"repository"}]`},
			{adminAuth, []string{"repository:test:push"}, `[{"actions":["pull","push"],"name":"test","type":"repository"}]`},
			{"", []string{"repository:test:delete"}, `[{"actions":[],"name":"test","type":"repository"}]`},
			{"", []string{"registry:catalog:*"}, `[{"actions":["*"],"name":"catalog","type":"registry"}]`},
			{"", []string{"repository:catalog:*"}, `[{"actions":[],"name":"catalog","type":"repository"}]`},
			{"", []string{"registry:test:pull"}, `[{"actions":[],"name":"test","type":"registry"}]`},
			{"", []string{"repository:test:pull", "repository:private/test:pull"},
				`[{"actions":["pull"],"name":"test","type":"repository"},{"actions":[],"name":"private/test","type":"repository"}]`},
			// Any scope that is not type:name:actions empties the whole list, as in Pulp.
			{adminAuth, []string{"repository:test:pull", "repository:test"}, `[]`},
			{adminAuth, []string{"repository:localhost:5000/test:pull"}, `[]`},
		} {
			t.Run(strings.Join(c.scopes, " ")+map[bool]string{true: " as admin"}[c.auth != ""], func(t *testing.T) {
				a := tf.getToken(t, c.auth, url.Values{"service": {host}, "scope": c.scopes}.Encode())
				if a.status != 200 {
					t.Fatalf("%d %v", a.status, a.body)
				}
				if got := string(must(json.Marshal(a.claims["access"]))); got != c.want {
					t.Errorf("access %s, want %s", got, c.want)
				}
			})
		}
	})
}

func TestTokenChallenges(t *testing.T) {
	tf := newTokenFixture(t, "")
	host := tf.host()
	realm := `Bearer realm="` + tf.srv.URL + `/token/",service="` + host + `"`
	anon := func(scopes ...string) map[string]string { return tf.bearerFor(t, "", scopes...) }
	asAdmin := func(scopes ...string) map[string]string { return tf.bearerFor(t, admin["Authorization"], scopes...) }
	chal := func(extra string) map[string]string { return map[string]string{"WWW-Authenticate": realm + extra} }
	other := newKey(t)
	signed := func(k *token.Key, at time.Time, aud, sub string, access ...token.Access) map[string]string {
		s := must(k.Issue(at, 5*time.Minute, tf.srv.URL+"/token/", aud, sub, access))
		return map[string]string{"Authorization": "Bearer " + s}
	}
	now := time.Unix(tf.clock.Load(), 0)
	pullTest := token.Access{Type: "repository", Name: "test", Actions: []string{"pull"}}
	const tags = `{"name":"test","tags":["corrupt","latest","v1","v2"]}`
	run(t, tf.srv, []call{
		{name: "base without credentials", path: "/v2/", status: 401, code: "UNAUTHORIZED", headers: chal(""),
			body: errBody("UNAUTHORIZED", "Authentication credentials were not provided.", "", "")},
		{name: "base with empty credentials", path: "/v2/", header: map[string]string{"Authorization": "Basic Og=="}, status: 401, headers: chal("")},
		{name: "base with the admin's Basic credentials", path: "/v2/", header: admin, status: 200, body: "{}"},
		{name: "base with a wrong password", path: "/v2/", header: map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:nope"))},
			status: 401, code: "UNAUTHORIZED", headers: chal("")},
		{name: "base with a login token", path: "/v2/", header: anon(), status: 200, body: "{}"},
		{name: "base with the admin's login token", path: "/v2/", header: asAdmin(), status: 200, body: "{}"},
		{name: "base with a scoped token", path: "/v2/", header: anon("repository:test:pull"), status: 401, headers: chal(`,error="insufficient_scope"`),
			body: errBody("UNAUTHORIZED", "Insufficient permissions", "", "")},

		// Pushes: push is granted (with pull) to the admin only (mayPush).
		{name: "upload without a token", method: "POST", path: "/v2/new/app/blobs/uploads/", status: 401, code: "UNAUTHORIZED",
			headers: chal(`,scope="repository:new/app:pull,push"`)},
		{name: "mount without a token", method: "POST", path: "/v2/new/app/blobs/uploads/?mount=sha256:" + strings.Repeat("a", 64) + "&from=test", status: 401,
			headers: chal(`,scope="repository:new/app:pull,push",scope="repository:test:pull"`)},
		{name: "upload, anonymous push token", method: "POST", path: "/v2/new/app/blobs/uploads/", header: anon("repository:new/app:pull,push"), status: 401,
			headers: chal(`,scope="repository:new/app:pull,push",error="insufficient_scope"`)},
		{name: "upload, admin pull token", method: "POST", path: "/v2/new/app/blobs/uploads/", header: asAdmin("repository:new/app:pull"), status: 401,
			headers: chal(`,scope="repository:new/app:pull,push",error="insufficient_scope"`)},
		{name: "upload, admin push token, no uploads here", method: "POST", path: "/v2/new/app/blobs/uploads/", header: asAdmin("repository:new/app:pull,push"),
			status: 405, code: "UNSUPPORTED"},
		{name: "delete, admin push token of another name", method: "DELETE", path: "/v2/test/manifests/sha256:" + strings.Repeat("a", 64),
			header: asAdmin("repository:new/app:pull,push"), status: 401, headers: chal(`,scope="repository:test:pull,push",error="insufficient_scope"`)},

		{name: "manifest without a token", path: "/v2/test/manifests/latest", status: 401, code: "UNAUTHORIZED", headers: chal(`,scope="repository:test:pull"`)},
		{name: "HEAD manifest without a token", method: "HEAD", path: "/v2/test/manifests/latest", status: 401, headers: chal(`,scope="repository:test:pull"`)},
		{name: "public tags, anonymous token", path: "/v2/test/tags/list", header: anon("repository:test:pull"), status: 200, body: tags},
		{name: "public tags, admin Basic", path: "/v2/test/tags/list", header: admin, status: 200, body: tags},
		{name: "public tags, login token", path: "/v2/test/tags/list", header: anon(), status: 401,
			headers: chal(`,scope="repository:test:pull",error="insufficient_scope"`)},
		{name: "token of repository A for B", path: "/v2/pinned/tags/list", header: anon("repository:test:pull"), status: 401,
			headers: chal(`,scope="repository:pinned:pull",error="insufficient_scope"`)},
		{name: "private, anonymous token", path: "/v2/private/test/tags/list", header: anon("repository:private/test:pull"), status: 401,
			code: "UNAUTHORIZED", headers: chal(`,scope="repository:private/test:pull",error="insufficient_scope"`)},
		{name: "private, admin token", path: "/v2/private/test/tags/list", header: asAdmin("repository:private/test:pull"), status: 200},
		{name: "private, admin Basic", path: "/v2/private/test/tags/list", header: admin, status: 200},
		{name: "private, admin token for another name", path: "/v2/private/test/tags/list", header: asAdmin("repository:test:pull"), status: 401,
			headers: chal(`,scope="repository:private/test:pull",error="insufficient_scope"`)},
		{name: "unknown name, admin token", path: "/v2/nothere/tags/list", header: asAdmin("repository:nothere:pull"), status: 404, code: "NAME_UNKNOWN"},
		{name: "unknown name, anonymous token", path: "/v2/nothere/tags/list", header: anon("repository:nothere:pull"), status: 401,
			headers: chal(`,scope="repository:nothere:pull",error="insufficient_scope"`)},
		{name: "invalid name", path: "/v2/Bad/tags/list", status: 400, code: "NAME_INVALID"},
		{name: "pull-through, anonymous token", path: "/v2/docker-cache/library/alpine/tags/list",
			header: anon("repository:docker-cache/library/alpine:pull"), status: 200},
		{name: "private pull-through, anonymous token", path: "/v2/secret/alpine/tags/list",
			header: anon("repository:secret/alpine:pull"), status: 401},

		{name: "catalog without a token", path: "/v2/_catalog", status: 401, headers: chal(`,scope="registry:catalog:*"`)},
		{name: "catalog, anonymous token", path: "/v2/_catalog", header: anon("registry:catalog:*"), status: 200,
			body: `{"repositories":["docker-cache/library/busybox","empty","pinned","test"]}`},
		{name: "catalog, admin token", path: "/v2/_catalog", header: asAdmin("registry:catalog:*"), status: 200,
			body: `{"repositories":["docker-cache/library/busybox","empty","pinned","private/test","secret/hidden","test"]}`},
		{name: "catalog, repository token", path: "/v2/_catalog", header: anon("repository:test:pull"), status: 401,
			headers: chal(`,scope="registry:catalog:*",error="insufficient_scope"`)},

		// Tokens that are not ours, not for this service, or no longer valid.
		{name: "signed by another key", path: "/v2/test/tags/list", header: signed(other, now, host, "", pullTest), status: 401,
			headers: chal(`,scope="repository:test:pull",error="invalid_token"`),
			body:    errBody("UNAUTHORIZED", "Access to the requested resource is not authorized. The provided Bearer token is invalid.", "", "")},
		{name: "for another service", path: "/v2/test/tags/list", header: signed(tf.key, now, "registry.example:443", "", pullTest), status: 401,
			headers: chal(`,scope="repository:test:pull",error="invalid_token"`)},
		{name: "expired", path: "/v2/test/tags/list", header: signed(tf.key, now.Add(-6*time.Minute), host, "", pullTest), status: 401,
			headers: chal(`,scope="repository:test:pull",error="invalid_token"`)},
		{name: "alg none", path: "/v2/test/tags/list", header: map[string]string{"Authorization": "Bearer " + unsigned(t, host, tf.srv.URL+"/token/", pullTest)},
			status: 401, headers: chal(`,scope="repository:test:pull",error="invalid_token"`)},
		{name: "no such user", path: "/v2/test/tags/list", header: signed(tf.key, now, host, "bob", pullTest), status: 401,
			body: errBody("UNAUTHORIZED", "No such user", "", ""), headers: chal(`,scope="repository:test:pull"`)},
		{name: "garbage bearer", path: "/v2/test/tags/list", header: map[string]string{"Authorization": "Bearer x"}, status: 401,
			headers: chal(`,scope="repository:test:pull",error="invalid_token"`)},
	})

	t.Run("expiry", func(t *testing.T) {
		h := anon("repository:test:pull")
		run(t, tf.srv, []call{{name: "fresh", path: "/v2/test/tags/list", header: h, status: 200}})
		tf.clock.Add(int64((DefaultTokenExpiration + token.Leeway + time.Second) / time.Second))
		defer tf.clock.Store(now.Unix())
		run(t, tf.srv, []call{{name: "expired", path: "/v2/test/tags/list", header: h, status: 401,
			headers: chal(`,scope="repository:test:pull",error="invalid_token"`)}})
	})

	t.Run("made private after the token was issued", func(t *testing.T) {
		h := anon("repository:test:pull")
		if err := tf.db.Model(&models.Distribution{}).Where("base_path = ?", "test").Update("private", true).Error; err != nil {
			t.Fatal(err)
		}
		defer tf.db.Model(&models.Distribution{}).Where("base_path = ?", "test").Update("private", false)
		run(t, tf.srv, []call{{name: "pull", path: "/v2/test/tags/list", header: h, status: 401,
			headers: chal(`,scope="repository:test:pull",error="insufficient_scope"`)}})
	})
}

// unsigned returns an "alg: none" token with the given claims.
func unsigned(t *testing.T, aud, iss string, access ...token.Access) string {
	t.Helper()
	now := time.Now().Unix()
	enc := func(v any) string { return base64.RawURLEncoding.EncodeToString(must(json.Marshal(v))) }
	return enc(map[string]any{"alg": "none", "typ": "JWT"}) + "." +
		enc(map[string]any{"iss": iss, "aud": aud, "sub": "admin", "access": access, "iat": now, "nbf": now, "exp": now + 300}) + "."
}

// TestTokenOrigin: with a content origin, the realm and the issuer are the origin's token
// endpoint, whatever host the request names; tokens issued for the request's own host as
// issuer are refused.
func TestTokenOrigin(t *testing.T) {
	const origin = "https://registry.example.com"
	tf := newTokenFixture(t, origin)
	host := tf.host()
	h := tf.bearerFor(t, "", "repository:test:pull")
	foreign := must(tf.key.Issue(time.Unix(tf.clock.Load(), 0), time.Minute, tf.srv.URL+"/token/", host, "",
		[]token.Access{{Type: "repository", Name: "test", Actions: []string{"pull"}}}))
	run(t, tf.srv, []call{
		{name: "challenge", path: "/v2/test/tags/list", status: 401,
			headers: map[string]string{"WWW-Authenticate": `Bearer realm="` + origin + `/token/",service="` + host + `",scope="repository:test:pull"`}},
		{name: "token of the origin", path: "/v2/test/tags/list", header: h, status: 200},
		{name: "token of another issuer", path: "/v2/test/tags/list", header: map[string]string{"Authorization": "Bearer " + foreign}, status: 401},
	})
}

// TestChallengeQuoting: a Host or name that would end a quoted parameter cannot inject
// parameters into the challenge (Go's server refuses such a Host; the handler must not rely
// on it).
func TestChallengeQuoting(t *testing.T) {
	tf := newTokenFixture(t, "")
	reg := must(New(Config{DB: tf.db, Storage: tf.store, Tokens: tf.key, AdminPassword: adminPassword}))
	req := httptest.NewRequest(http.MethodGet, "/v2/test/tags/list", nil)
	req.Host = `evil",scope="registry:catalog:*`
	w := httptest.NewRecorder()
	reg.ServeHTTP(w, req)
	got := w.Header().Get("WWW-Authenticate")
	want := `Bearer realm="http://evil%22,scope=%22registry:catalog:*/token/",service="evil%22,scope=%22registry:catalog:*",scope="repository:test:pull"`
	if w.Code != 401 || got != want {
		t.Errorf("%d %q, want 401 %q", w.Code, got, want)
	}
}
