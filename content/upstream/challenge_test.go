package upstream

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// recorder is a server that keeps the Authorization header of every request it gets and
// answers with respond.
type recorder struct {
	srv   *httptest.Server
	mu    sync.Mutex
	auths []string
}

// newRecorder starts a recorder on loopback and stops it at cleanup.
func newRecorder(t *testing.T, respond http.HandlerFunc) *recorder {
	t.Helper()
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.auths = append(r.auths, req.Header.Get("Authorization"))
		r.mu.Unlock()
		respond(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// seen returns the Authorization header of each request so far ("" when there was none).
func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.auths...)
}

// hostOf is the host:port of a test server's URL.
func hostOf(rawURL string) string {
	return strings.TrimPrefix(strings.TrimPrefix(rawURL, "https://"), "http://")
}

// TestRedirectedChallengeIgnored checks that a 401 from a redirect target on another origin is
// a plain denial: its Bearer realm never receives the remote's credentials, its Basic challenge
// never makes the client send Basic credentials, and neither is remembered for later requests.
func TestRedirectedChallengeIgnored(t *testing.T) {
	const user, pass = "alice", "s3cret"
	ctx := context.Background()
	for _, scheme := range []string{"bearer", "basic"} {
		t.Run(scheme, func(t *testing.T) {
			hijacked := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"token":"hijacked-token","expires_in":3600}`))
			})
			challenge := `Bearer realm="` + hijacked.srv.URL + `/token",service="evil"`
			if scheme == "basic" {
				challenge = `Basic realm="cdn"`
			}
			cdn := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("WWW-Authenticate", challenge)
				writeRegError(w, http.StatusUnauthorized, "UNAUTHORIZED", "log in here")
			})
			f := newFake(t, authBearer, func(f *fakeRegistry) {
				f.user, f.pass, f.realmRequiresAuth = user, pass, true
				f.blobRedirect = cdn.srv.URL
			})
			for _, repo := range []string{"a", "b"} {
				f.addManifest(repo, "latest", ociManifestType, ociManifest(1))
			}
			dgst := f.addBlob("a", []byte("layer"))
			c := newClient(t, f.reg.URL, func(c *Config) { c.Username, c.Password = user, pass })

			// A token for scope a is cached, so the blob request goes out with it and is
			// redirected to the CDN, which answers 401 with its own challenge.
			if _, _, err := c.GetManifest(ctx, "a", "latest", nil); err != nil {
				t.Fatalf("GetManifest(a): %v", err)
			}
			_, _, err := c.GetBlob(ctx, "a", dgst, 0)
			var e *Error
			if !errors.As(err, &e) || e.Op != "get blob" || e.StatusCode != http.StatusUnauthorized {
				t.Fatalf("GetBlob error = %#v, want a 401 *Error of get blob", err)
			}
			if !strings.Contains(e.Error(), hostOf(cdn.srv.URL)) || !strings.Contains(e.Error(), "redirect") {
				t.Errorf("GetBlob error %q does not say that the redirect target %s refused", e, hostOf(cdn.srv.URL))
			}

			// A new scope goes to the registry's own realm, with no 401 first.
			if _, _, err := c.GetManifest(ctx, "b", "latest", nil); err != nil {
				t.Fatalf("GetManifest(b): %v", err)
			}
			if got := hijacked.seen(); len(got) != 0 {
				t.Errorf("the hijacked realm was asked %d times (Authorization %q)", len(got), got)
			}
			for _, a := range cdn.seen() {
				if a != "" {
					t.Errorf("the CDN received Authorization %q", a)
				}
			}
			for _, r := range f.seen() {
				if strings.HasPrefix(r.Header.Get("Authorization"), "Basic ") {
					t.Errorf("registry request %s carried Basic credentials", r.URL)
				}
			}
			if _, unauth, tokens := f.stats(); unauth != 1 || tokens != 2 {
				t.Errorf("401s = %d, token requests = %d; want 1 and 2", unauth, tokens)
			}
			if got := f.scopes(); len(got) != 2 || got[1] != pullScope("b") {
				t.Errorf("registry realm scopes = %q", got)
			}
		})
	}
}

// TestRealmWeakerScheme checks that an https registry whose own 401 names a plain http realm is
// refused: no token request is made, so the credentials never travel in clear, and the
// challenge is not kept for the next request.
func TestRealmWeakerScheme(t *testing.T) {
	const user, pass = "alice", "s3cret"
	f := newFake(t, authBearer, func(f *fakeRegistry) {
		f.tls, f.plainRealm = true, true
		f.user, f.pass, f.realmRequiresAuth = user, pass, true
	})
	f.addManifest("a", "latest", ociManifestType, ociManifest(1))
	c := newClient(t, f.reg.URL, func(c *Config) {
		c.CACert = certPEM(f.reg)
		c.Username, c.Password = user, pass
	})
	for range 2 {
		_, _, err := c.GetManifest(context.Background(), "a", "latest", nil)
		if !errors.Is(err, ErrBadResponse) || IsUnavailable(err) {
			t.Fatalf("GetManifest error = %v, want ErrBadResponse", err)
		}
		msg := err.Error()
		if !strings.Contains(msg, hostOf(f.realm.URL)) || !strings.Contains(msg, "http") {
			t.Errorf("error %q does not name the http realm %s", msg, hostOf(f.realm.URL))
		}
		if strings.Contains(msg, pass) {
			t.Errorf("error %q leaks the password", msg)
		}
	}
	if _, unauth, tokens := f.stats(); tokens != 0 || unauth != 2 {
		t.Errorf("token requests = %d, 401s = %d; want 0 and 2 (the challenge is not kept)", tokens, unauth)
	}
}

// TestRealmOnOtherOrigin checks the legitimate case that the two tests above must not break: the
// registry's own 401 names an https realm on another origin (as Docker Hub's names
// auth.docker.io), which gets the credentials, and blobs redirected to a CDN still arrive.
func TestRealmOnOtherOrigin(t *testing.T) {
	const user, pass = "alice", "s3cret"
	cdn := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("layer")) })
	f := newFake(t, authBearer, func(f *fakeRegistry) {
		f.tls = true
		f.user, f.pass, f.realmRequiresAuth = user, pass, true
		f.blobRedirect = cdn.srv.URL
	})
	if sameOrigin(mustParse(t, f.reg.URL), mustParse(t, f.realm.URL)) || !strings.HasPrefix(f.realm.URL, "https://") {
		t.Fatalf("setup: realm %s must be https on another origin than %s", f.realm.URL, f.reg.URL)
	}
	for _, repo := range []string{"a", "b"} {
		f.addManifest(repo, "latest", ociManifestType, ociManifest(1))
	}
	dgst := f.addBlob("a", []byte("layer"))
	c := newClient(t, f.reg.URL, func(c *Config) {
		c.CACert = certPEM(f.reg) // httptest servers share one certificate
		c.Username, c.Password = user, pass
	})
	ctx := context.Background()
	for _, repo := range []string{"a", "b"} {
		if _, _, err := c.GetManifest(ctx, repo, "latest", nil); err != nil {
			t.Fatalf("GetManifest(%s): %v", repo, err)
		}
	}
	rc, _, err := c.GetBlob(ctx, "a", dgst, 0)
	if err != nil {
		t.Fatalf("GetBlob: %v", err)
	}
	rc.Close()
	if _, unauth, tokens := f.stats(); unauth != 1 || tokens != 2 {
		t.Errorf("401s = %d, token requests = %d; want 1 and 2", unauth, tokens)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.realmAuth {
		if u, p, ok := (&http.Request{Header: http.Header{"Authorization": {a}}}).BasicAuth(); !ok || u != user || p != pass {
			t.Errorf("realm Authorization = %q, want the remote's Basic credentials", a)
		}
	}
}

// mustParse parses a test server's URL.
func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
