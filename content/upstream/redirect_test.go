package upstream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// extraHeaders are configured on the client in redirect tests; the second one looks like a
// credential.
var testHeaders = map[string]string{"X-Trace": "t1", "X-Api-Key": "key-123"}

func TestBlobRedirectToOtherOrigin(t *testing.T) {
	const repo = "library/busybox"
	data := []byte("0123456789 layer bytes")
	var cdnHits atomic.Int32
	var cdnRange atomic.Value
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cdnHits.Add(1)
		for _, h := range []string{"Authorization", "X-Trace", "X-Api-Key", "Cookie"} {
			if v := r.Header.Get(h); v != "" {
				t.Errorf("CDN received %s: %q", h, v)
			}
		}
		if !strings.HasPrefix(r.Header.Get("User-Agent"), "pulpgo") {
			t.Errorf("CDN User-Agent = %q", r.Header.Get("User-Agent"))
		}
		cdnRange.Store(r.Header.Get("Range"))
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(cdn.Close)

	f := newFake(t, authBearer, func(f *fakeRegistry) { f.blobRedirect = cdn.URL })
	dgst := f.addBlob(repo, data)
	c := newClient(t, f.reg.URL, func(c *Config) { c.Headers = testHeaders })

	tests := []struct {
		offset    int64
		wantRange string
	}{
		{0, ""},
		{3, "bytes=3-"},
	}
	for _, tt := range tests {
		rc, size, err := c.GetBlob(context.Background(), repo, dgst, tt.offset)
		if err != nil {
			t.Fatalf("GetBlob(%d): %v", tt.offset, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data[tt.offset:]) || size != int64(len(data))-tt.offset {
			t.Fatalf("GetBlob(%d) = %q, %d, %v", tt.offset, got, size, err)
		}
		if r := cdnRange.Load(); r != tt.wantRange {
			t.Errorf("CDN Range = %q, want %q", r, tt.wantRange)
		}
	}
	if cdnHits.Load() != 2 {
		t.Errorf("CDN hits = %d, want 2", cdnHits.Load())
	}
	// The registry itself got the extra headers and the token.
	for _, r := range f.seen() {
		if r.Header.Get("X-Trace") != "t1" || r.Header.Get("X-Api-Key") != "key-123" {
			t.Errorf("registry request %s lacks the extra headers: %v", r.URL, r.Header)
		}
	}
	if reqs := f.seen(); reqs[len(reqs)-1].Header.Get("Authorization") == "" {
		t.Error("registry request without Authorization")
	}
}

func TestRedirectSameOriginKeepsCredentials(t *testing.T) {
	const repo = "a"
	data := []byte("same origin bytes")
	f := newFake(t, authBearer)
	dgst := f.addBlob(repo, data)
	f.handle = func(w http.ResponseWriter, r *http.Request) bool {
		if p, ok := strings.CutPrefix(r.URL.Path, "/storage/"); ok {
			if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer tok-") || r.Header.Get("X-Api-Key") == "" {
				t.Errorf("same-origin redirect lost credentials: %v", r.Header)
			}
			if p != dgst {
				t.Errorf("storage path = %q", p)
			}
			w.Write(data)
			return true
		}
		if strings.Contains(r.URL.Path, "/blobs/") && r.Header.Get("Authorization") != "" {
			http.Redirect(w, r, "/storage/"+dgst, http.StatusFound)
			return true
		}
		return false
	}
	c := newClient(t, f.reg.URL, func(c *Config) { c.Headers = testHeaders })
	rc, _, err := c.GetBlob(context.Background(), repo, dgst, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, _ := io.ReadAll(rc); !bytes.Equal(got, data) {
		t.Fatalf("body = %q", got)
	}
}

func TestSameOrigin(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"http://127.0.0.1:5000/v2/", "http://127.0.0.1:5000/cdn/x?y=1", true},
		{"https://Registry.example:443/a", "https://registry.example/b", true},
		{"http://registry.example/a", "http://registry.example:80/b", true},
		// Same host name, other port: net/http alone would keep Authorization here.
		{"http://127.0.0.1:5000/x", "http://127.0.0.1:5001/x", false},
		{"http://127.0.0.1/x", "https://127.0.0.1/x", false},
		{"https://registry.example/x", "https://registry.example:8443/x", false},
		{"https://registry.example/x", "https://cdn.registry.example/x", false},
	}
	for _, tt := range tests {
		a, _ := url.Parse(tt.a)
		b, _ := url.Parse(tt.b)
		if got := sameOrigin(a, b); got != tt.want {
			t.Errorf("sameOrigin(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestRedirectLimit(t *testing.T) {
	f := newFake(t, authNone)
	var hits atomic.Int32
	f.handle = func(w http.ResponseWriter, r *http.Request) bool {
		n := hits.Add(1)
		http.Redirect(w, r, "/loop/"+strings.Repeat("x", int(n)), http.StatusTemporaryRedirect)
		return true
	}
	c := newClient(t, f.reg.URL)
	_, _, err := c.GetBlob(context.Background(), "a", digestOf(nil), 0)
	if !errors.Is(err, ErrBadResponse) || IsUnavailable(err) {
		t.Fatalf("GetBlob error = %v, want ErrBadResponse", err)
	}
	if hits.Load() != 1+maxRedirects {
		t.Errorf("requests = %d, want %d", hits.Load(), 1+maxRedirects)
	}
}
