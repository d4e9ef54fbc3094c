package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAuth(t *testing.T) {
	const repo = "library/busybox"
	tests := []struct {
		name     string
		mode     authMode
		fake     func(*fakeRegistry)
		cfg      func(*Config)
		wantErr  string // Op of the expected *Error, "" for success
		wantCode int
		// wantRealmAuth is whether the token request carried Basic credentials.
		wantRealmAuth bool
		wantTokens    int
	}{
		{name: "no auth", mode: authNone},
		{name: "bearer anonymous", mode: authBearer, wantTokens: 1},
		{name: "bearer access_token", mode: authBearer, fake: func(f *fakeRegistry) { f.accessToken = true }, wantTokens: 1},
		{
			name: "bearer with credentials", mode: authBearer,
			fake:          func(f *fakeRegistry) { f.user, f.pass, f.realmRequiresAuth = "alice", "s3cret", true },
			cfg:           func(c *Config) { c.Username, c.Password = "alice", "s3cret" },
			wantRealmAuth: true, wantTokens: 1,
		},
		{
			name: "bearer wrong credentials", mode: authBearer,
			fake:    func(f *fakeRegistry) { f.user, f.pass, f.realmRequiresAuth = "alice", "s3cret", true },
			cfg:     func(c *Config) { c.Username, c.Password = "alice", "wrong-password" },
			wantErr: "get token", wantCode: http.StatusUnauthorized, wantRealmAuth: true, wantTokens: 1,
		},
		{
			name: "bearer realm refuses anonymous", mode: authBearer,
			fake:    func(f *fakeRegistry) { f.user, f.pass, f.realmRequiresAuth = "alice", "s3cret", true },
			wantErr: "get token", wantCode: http.StatusUnauthorized, wantTokens: 1,
		},
		{
			name: "basic", mode: authBasic,
			fake: func(f *fakeRegistry) { f.user, f.pass = "alice", "s3cret" },
			cfg:  func(c *Config) { c.Username, c.Password = "alice", "s3cret" },
		},
		{
			name: "basic without credentials", mode: authBasic,
			fake:    func(f *fakeRegistry) { f.user, f.pass = "alice", "s3cret" },
			wantErr: "get manifest", wantCode: http.StatusUnauthorized,
		},
		{
			name: "basic wrong credentials", mode: authBasic,
			fake:    func(f *fakeRegistry) { f.user, f.pass = "alice", "s3cret" },
			cfg:     func(c *Config) { c.Username, c.Password = "alice", "wrong-password" },
			wantErr: "get manifest", wantCode: http.StatusUnauthorized,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []func(*fakeRegistry)
			if tt.fake != nil {
				opts = append(opts, tt.fake)
			}
			f := newFake(t, tt.mode, opts...)
			body := ociManifest(1)
			dgst := f.addManifest(repo, "latest", ociManifestType, body)
			var edits []func(*Config)
			if tt.cfg != nil {
				edits = append(edits, tt.cfg)
			}
			c := newClient(t, f.reg.URL, edits...)

			got, desc, err := c.GetManifest(context.Background(), repo, "latest", nil)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("GetManifest: %v", err)
				}
				if string(got) != string(body) || desc.Digest != dgst || desc.MediaType != ociManifestType {
					t.Fatalf("GetManifest = %q, %+v", got, desc)
				}
			} else {
				var e *Error
				if !errors.As(err, &e) || e.Op != tt.wantErr || e.StatusCode != tt.wantCode {
					t.Fatalf("GetManifest error = %#v, want Op %q status %d", err, tt.wantErr, tt.wantCode)
				}
				if IsNotFound(err) || IsUnavailable(err) {
					t.Errorf("a refusal must be neither not-found nor unavailable: %v", err)
				}
				for _, secret := range []string{"s3cret", "wrong-password", "tok-"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q leaks %q", err, secret)
					}
				}
			}
			if _, _, tokens := f.stats(); tokens != tt.wantTokens {
				t.Errorf("token requests = %d, want %d", tokens, tt.wantTokens)
			}
			f.mu.Lock()
			for _, a := range f.realmAuth {
				if strings.HasPrefix(a, "Basic ") != tt.wantRealmAuth {
					t.Errorf("realm Authorization = %q, want Basic: %v", a, tt.wantRealmAuth)
				}
			}
			f.mu.Unlock()
		})
	}
}

// TestBasicPreemptive checks that after one Basic challenge the credentials go out with every
// request.
func TestBasicPreemptive(t *testing.T) {
	f := newFake(t, authBasic, func(f *fakeRegistry) { f.user, f.pass = "alice", "s3cret" })
	f.addManifest("a", "v1", ociManifestType, ociManifest(1))
	c := newClient(t, f.reg.URL, func(c *Config) { c.Username, c.Password = "alice", "s3cret" })
	for range 3 {
		if _, err := c.HeadManifest(context.Background(), "a", "v1", nil); err != nil {
			t.Fatal(err)
		}
	}
	if req, unauth, _ := f.stats(); req != 4 || unauth != 1 {
		t.Errorf("requests = %d, 401s = %d; want 4 and 1", req, unauth)
	}
}

// fakeClock is a settable clock for token expiry.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestTokenCache(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T, opts ...func(*fakeRegistry)) (*fakeRegistry, *Client, *fakeClock) {
		f := newFake(t, authBearer, opts...)
		for _, repo := range []string{"a", "b"} {
			f.addManifest(repo, "latest", ociManifestType, ociManifest(1))
		}
		c := newClient(t, f.reg.URL)
		clock := &fakeClock{t: time.Unix(1_000_000, 0)}
		c.now = clock.now
		return f, c, clock
	}
	get := func(t *testing.T, c *Client, repo string) {
		t.Helper()
		if _, _, err := c.GetManifest(ctx, repo, "latest", nil); err != nil {
			t.Fatalf("GetManifest(%s): %v", repo, err)
		}
	}
	wantStats := func(t *testing.T, f *fakeRegistry, wantUnauth, wantTokens int) {
		t.Helper()
		if _, unauth, tokens := f.stats(); unauth != wantUnauth || tokens != wantTokens {
			t.Fatalf("401s = %d, token requests = %d; want %d and %d", unauth, tokens, wantUnauth, wantTokens)
		}
	}

	t.Run("sequential requests share one token", func(t *testing.T) {
		f, c, _ := setup(t)
		for range 5 {
			get(t, c, "a")
		}
		wantStats(t, f, 1, 1)
	})

	t.Run("concurrent requests share one token request", func(t *testing.T) {
		const n = 8
		arrived, refused := make(chan struct{}), make(chan struct{})
		var mu sync.Mutex
		waiting := 0
		f, c, _ := setup(t, func(f *fakeRegistry) {
			// Hold the first n requests until all have arrived, so none of them can use a
			// token another one fetched, and hold the realm until all n have been refused,
			// so their token requests overlap.
			f.handle = func(w http.ResponseWriter, r *http.Request) bool {
				if r.Header.Get("Authorization") != "" {
					return false
				}
				mu.Lock()
				if waiting++; waiting == n {
					close(arrived)
				}
				mu.Unlock()
				select {
				case <-arrived:
				case <-r.Context().Done():
				}
				return false
			}
			f.realmGate = refused
			f.onUnauthorized = func(k int) {
				if k == n {
					close(refused)
				}
			}
		})
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if _, _, err := c.GetManifest(ctx, "a", "latest", nil); err != nil {
					t.Errorf("GetManifest: %v", err)
				}
			})
		}
		wg.Wait()
		wantStats(t, f, n, 1)
	})

	t.Run("another repository gets its own token without a 401", func(t *testing.T) {
		f, c, _ := setup(t)
		get(t, c, "a")
		get(t, c, "b")
		get(t, c, "a")
		get(t, c, "b")
		wantStats(t, f, 1, 2)
		if got := f.scopes(); got[0] != "repository:a:pull" || got[1] != "repository:b:pull" {
			t.Errorf("scopes = %q", got)
		}
	})

	t.Run("expired token is refreshed", func(t *testing.T) {
		f, c, clock := setup(t, func(f *fakeRegistry) { f.tokenTTL = 120 })
		get(t, c, "a")
		clock.advance(90 * time.Second) // refresh is due at 120 s - 24 s
		get(t, c, "a")
		wantStats(t, f, 1, 1)
		clock.advance(10 * time.Second)
		get(t, c, "a")
		wantStats(t, f, 1, 2)
	})

	t.Run("default lifetime is 60 s", func(t *testing.T) {
		f, c, clock := setup(t)
		get(t, c, "a")
		clock.advance(47 * time.Second) // refresh is due at 60 s - 12 s
		get(t, c, "a")
		wantStats(t, f, 1, 1)
		clock.advance(2 * time.Second)
		get(t, c, "a")
		wantStats(t, f, 1, 2)
	})

	t.Run("rejected token is replaced once", func(t *testing.T) {
		f, c, _ := setup(t)
		get(t, c, "a")
		f.revokeAll()
		get(t, c, "a")
		wantStats(t, f, 2, 2)
	})

	t.Run("token failures are not cached", func(t *testing.T) {
		f, c, _ := setup(t, func(f *fakeRegistry) { f.realmRequiresAuth = true })
		for range 2 {
			if _, _, err := c.GetManifest(ctx, "a", "latest", nil); err == nil {
				t.Fatal("want an error")
			}
		}
		if _, _, tokens := f.stats(); tokens != 2 {
			t.Errorf("token requests = %d, want 2", tokens)
		}
	})
}

func TestParseChallenges(t *testing.T) {
	tests := []struct {
		in   []string
		want []challenge
	}{
		{
			in:   []string{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"`},
			want: []challenge{{scheme: "bearer", realm: "https://auth.docker.io/token", service: "registry.docker.io"}},
		},
		{
			in:   []string{`Basic realm="Registry Realm"`},
			want: []challenge{{scheme: "basic", realm: "Registry Realm"}},
		},
		{
			in: []string{`Basic realm="x, y", Bearer realm=https://r.example/t , service = "s\"q"`},
			want: []challenge{
				{scheme: "basic", realm: "x, y"},
				{scheme: "bearer", realm: "https://r.example/t", service: `s"q`},
			},
		},
		{in: []string{`Negotiate`, `Bearer`}, want: []challenge{{scheme: "negotiate"}, {scheme: "bearer"}}},
		{in: []string{`=junk,,=`}, want: []challenge{{scheme: "=junk"}, {scheme: "="}}},
		{in: nil, want: nil},
	}
	for _, tt := range tests {
		got := parseChallenges(tt.in)
		if len(got) != len(tt.want) {
			t.Errorf("parseChallenges(%q) = %+v, want %+v", tt.in, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("parseChallenges(%q)[%d] = %+v, want %+v", tt.in, i, got[i], tt.want[i])
			}
		}
	}
}

// TestTokenCacheBounded checks that the tokens of one client are bounded in number (one per
// repository pulled, so anonymous pulls of many names could grow it) and in size.
func TestTokenCacheBounded(t *testing.T) {
	f := newFake(t, authBearer)
	for i := range maxTokens + 20 {
		f.addManifest(fmt.Sprintf("r%d", i), "latest", ociManifestType, ociManifest(1))
	}
	c := newClient(t, f.reg.URL)
	for i := range maxTokens + 20 {
		if _, _, err := c.GetManifest(context.Background(), fmt.Sprintf("r%d", i), "latest", nil); err != nil {
			t.Fatalf("GetManifest(r%d): %v", i, err)
		}
	}
	c.tokens.mu.Lock()
	n := len(c.tokens.tokens)
	c.tokens.mu.Unlock()
	if n > maxTokens {
		t.Fatalf("%d tokens kept, bound %d", n, maxTokens)
	}
}
