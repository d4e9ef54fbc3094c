package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestHeadManifest(t *testing.T) {
	ctx := context.Background()
	body := ociManifest(7)
	f := newFake(t, authBearer)
	dgst := f.addManifest("library/busybox", "latest", ociManifestType, body)
	c := newClient(t, f.reg.URL)

	for _, ref := range []string{"latest", dgst} {
		d, err := c.HeadManifest(ctx, "library/busybox", ref, nil)
		if err != nil {
			t.Fatalf("HeadManifest(%s): %v", ref, err)
		}
		want := Descriptor{Digest: dgst, MediaType: ociManifestType, Size: int64(len(body))}
		if d != want {
			t.Errorf("HeadManifest(%s) = %+v, want %+v", ref, d, want)
		}
	}
	for _, r := range f.seen() {
		if r.Method != http.MethodHead {
			t.Errorf("HeadManifest sent %s %s", r.Method, r.URL)
		}
		if r.Header.Get("Accept") != defaultAccept {
			t.Errorf("Accept = %q", r.Header.Get("Accept"))
		}
	}
}

func TestManifestAccept(t *testing.T) {
	f := newFake(t, authNone)
	f.addManifest("a", "latest", ociManifestType, ociManifest(1))
	c := newClient(t, f.reg.URL)
	accept := []string{"application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.v2+json"}
	if _, _, err := c.GetManifest(context.Background(), "a", "latest", accept); err != nil {
		t.Fatal(err)
	}
	if got := f.seen()[0].Header.Get("Accept"); got != strings.Join(accept, ", ") {
		t.Errorf("Accept = %q", got)
	}
	for _, want := range []string{
		"application/vnd.docker.distribution.manifest.v2+json",
		"application/vnd.docker.distribution.manifest.list.v2+json",
		"application/vnd.oci.image.manifest.v1+json",
		"application/vnd.oci.image.index.v1+json",
	} {
		if !strings.Contains(defaultAccept, want) {
			t.Errorf("default Accept lacks %s", want)
		}
	}
}

func TestManifestDigests(t *testing.T) {
	body := ociManifest(3)
	good := digestOf(body)
	other := digestOf([]byte("other"))
	tests := []struct {
		name       string
		ref        string
		head       bool
		digestHdr  string // "-" omits the header
		mediaType  string
		body       []byte
		wantDigest string
		wantErr    error
	}{
		{name: "get by tag with header", ref: "v1", digestHdr: good, body: body, wantDigest: good},
		{name: "get by tag without header hashes the body", ref: "v1", digestHdr: "-", body: body, wantDigest: good},
		{name: "get by digest without header", ref: good, digestHdr: "-", body: body, wantDigest: good},
		{name: "get with a header that does not match the body", ref: "v1", digestHdr: other, body: body, wantErr: ErrDigestMismatch},
		{name: "get by digest, body hashes to another", ref: other, digestHdr: "-", body: body, wantErr: ErrDigestMismatch},
		{name: "get with a malformed header", ref: "v1", digestHdr: "sha256:XYZ", body: body, wantErr: ErrBadResponse},
		{name: "signed schema 1 trusts the header", ref: "v1", digestHdr: other, body: body,
			mediaType: "application/vnd.docker.distribution.manifest.v1+prettyjws", wantDigest: other},
		{name: "head without header", ref: "v1", head: true, digestHdr: "-", body: body, wantErr: ErrMissingDigest},
		{name: "head by digest, header names another", ref: good, head: true, digestHdr: other, body: body, wantErr: ErrDigestMismatch},
		{name: "head with header", ref: "v1", head: true, digestHdr: good, body: body, wantDigest: good},
		{name: "get too large by length", ref: "v1", digestHdr: "-", body: make([]byte, MaxManifestSize+1), wantErr: ErrTooLarge},
		{name: "get just small enough", ref: "v1", digestHdr: "-", body: make([]byte, MaxManifestSize), wantDigest: digestOf(make([]byte, MaxManifestSize))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mt := tt.mediaType
			if mt == "" {
				mt = ociManifestType
			}
			f := newFake(t, authNone)
			f.handle = func(w http.ResponseWriter, r *http.Request) bool {
				w.Header().Set("Content-Type", mt+"; charset=utf-8")
				if tt.digestHdr != "-" {
					w.Header().Set("Docker-Content-Digest", tt.digestHdr)
				}
				w.Header().Set("Content-Length", fmt.Sprint(len(tt.body)))
				if r.Method == http.MethodGet {
					w.Write(tt.body)
				}
				return true
			}
			c := newClient(t, f.reg.URL)
			var (
				d   Descriptor
				got []byte
				err error
			)
			if tt.head {
				d, err = c.HeadManifest(context.Background(), "a", tt.ref, nil)
			} else {
				got, d, err = c.GetManifest(context.Background(), "a", tt.ref, nil)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				if IsUnavailable(err) || IsNotFound(err) {
					t.Errorf("protocol error classified as unavailable or not found: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Digest != tt.wantDigest || d.MediaType != mt || d.Size != int64(len(tt.body)) {
				t.Errorf("descriptor = %+v", d)
			}
			if !tt.head && !bytes.Equal(got, tt.body) {
				t.Error("body differs")
			}
		})
	}
}

func TestManifestTooLargeChunked(t *testing.T) {
	f := newFake(t, authNone)
	f.handle = func(w http.ResponseWriter, r *http.Request) bool {
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for i := 0; i <= MaxManifestSize/len(chunk); i++ {
			if _, err := w.Write(chunk); err != nil {
				return true
			}
			w.(http.Flusher).Flush()
		}
		return true
	}
	c := newClient(t, f.reg.URL)
	if _, _, err := c.GetManifest(context.Background(), "a", "latest", nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error = %v, want ErrTooLarge", err)
	}
}

func TestGetBlob(t *testing.T) {
	data := []byte("the quick brown fox jumps over the lazy dog")
	d := digestOf(data)
	tests := []struct {
		name      string
		offset    int64
		serve     func(w http.ResponseWriter, r *http.Request) bool // nil: the fake's own blob handler
		wantRange string
		wantSize  int64
		wantErr   error
	}{
		{name: "whole", offset: 0, wantSize: int64(len(data))},
		{name: "range", offset: 10, wantRange: "bytes=10-", wantSize: int64(len(data)) - 10},
		{name: "range ignored upstream", offset: 10, wantRange: "bytes=10-", wantSize: int64(len(data)) - 10,
			serve: func(w http.ResponseWriter, r *http.Request) bool {
				w.Header().Set("Content-Length", fmt.Sprint(len(data)))
				w.Write(data)
				return true
			}},
		{name: "unknown length", offset: 0, wantSize: -1,
			serve: func(w http.ResponseWriter, r *http.Request) bool {
				w.Write(data[:5])
				w.(http.Flusher).Flush() // forces chunked encoding
				w.Write(data[5:])
				return true
			}},
		{name: "wrong content range", offset: 10, wantRange: "bytes=10-", wantErr: ErrBadResponse,
			serve: func(w http.ResponseWriter, r *http.Request) bool {
				w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(data)-1, len(data)))
				w.WriteHeader(http.StatusPartialContent)
				w.Write(data)
				return true
			}},
		{name: "offset past the end", offset: 1000, wantRange: "bytes=1000-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, authBearer)
			f.addBlob("a", data)
			if tt.serve != nil {
				f.handle = func(w http.ResponseWriter, r *http.Request) bool {
					if r.Header.Get("Authorization") == "" {
						return false // let the fake challenge first
					}
					return tt.serve(w, r)
				}
			}
			c := newClient(t, f.reg.URL)
			rc, size, err := c.GetBlob(context.Background(), "a", d, tt.offset)
			reqs := f.seen()
			if got := reqs[len(reqs)-1].Header.Get("Range"); got != tt.wantRange {
				t.Errorf("Range = %q, want %q", got, tt.wantRange)
			}
			if tt.offset >= int64(len(data)) {
				var e *Error
				if !errors.As(err, &e) || e.StatusCode != http.StatusRequestedRangeNotSatisfiable {
					t.Fatalf("error = %v, want a 416", err)
				}
				return
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(got, data[tt.offset:]) || size != tt.wantSize {
				t.Errorf("GetBlob = %q, size %d, %v; want size %d", got, size, err, tt.wantSize)
			}
		})
	}
}

func TestHeadBlob(t *testing.T) {
	data := []byte("blob")
	f := newFake(t, authBearer)
	d := f.addBlob("a", data)
	c := newClient(t, f.reg.URL)
	size, err := c.HeadBlob(context.Background(), "a", d)
	if err != nil || size != int64(len(data)) {
		t.Fatalf("HeadBlob = %d, %v", size, err)
	}
	if _, err := c.HeadBlob(context.Background(), "a", digestOf([]byte("missing"))); !IsNotFound(err) {
		t.Errorf("missing blob: %v", err)
	}
	f.handle = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") == "" {
			return false
		}
		w.Header().Set("Docker-Content-Digest", digestOf([]byte("other")))
		w.Header().Set("Content-Length", "4")
		return true
	}
	if _, err := c.HeadBlob(context.Background(), "a", d); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("mismatching Docker-Content-Digest: %v", err)
	}
	for _, r := range f.seen() {
		if r.Method != http.MethodHead {
			t.Errorf("HeadBlob sent %s", r.Method)
		}
	}
}

func TestValidation(t *testing.T) {
	good := digestOf([]byte("x"))
	badNames := []string{
		"", "..", "../etc", "a/../b", "a/./b", "a//b", "/a", "a/", "A", "a b", "a%2f..", "a/%2e%2e",
		"a..b", "a?x", "a#x", "a\\b", "a\nb", "-a", "a-", "a___b", strings.Repeat("a", 256),
	}
	badTags := []string{"", "..", "../x", "a/b", "-x", ".x", "x?y", "x y", "%2e%2e", strings.Repeat("t", 129)}
	badDigests := []string{
		"", "sha256:", "sha256:" + strings.Repeat("A", 64), "sha256:" + strings.Repeat("a", 63),
		"sha256:" + strings.Repeat("a", 65), "sha512:" + strings.Repeat("a", 128), "sha256:../../" + strings.Repeat("a", 58),
		good + "/..", "../" + good, "sha256:" + strings.Repeat("g", 64),
	}
	type tcase struct {
		name string
		want error
		run  func(context.Context, *Client) error
	}
	var tests []tcase
	for _, n := range badNames {
		tests = append(tests,
			tcase{"head manifest name " + n, ErrInvalidName, func(ctx context.Context, c *Client) error {
				_, err := c.HeadManifest(ctx, n, "latest", nil)
				return err
			}},
			tcase{"get blob name " + n, ErrInvalidName, func(ctx context.Context, c *Client) error {
				_, _, err := c.GetBlob(ctx, n, good, 0)
				return err
			}},
			tcase{"tags name " + n, ErrInvalidName, func(ctx context.Context, c *Client) error {
				_, err := c.Tags(ctx, n)
				return err
			}},
		)
	}
	for _, ref := range badTags {
		tests = append(tests, tcase{"get manifest tag " + ref, ErrInvalidReference, func(ctx context.Context, c *Client) error {
			_, _, err := c.GetManifest(ctx, "a", ref, nil)
			return err
		}})
	}
	for _, d := range badDigests {
		want := ErrInvalidDigest
		tests = append(tests,
			tcase{"head blob digest " + d, want, func(ctx context.Context, c *Client) error {
				_, err := c.HeadBlob(ctx, "a", d)
				return err
			}},
			tcase{"get blob digest " + d, want, func(ctx context.Context, c *Client) error {
				_, _, err := c.GetBlob(ctx, "a", d, 0)
				return err
			}},
		)
		if strings.Contains(d, ":") {
			tests = append(tests, tcase{"get manifest digest " + d, want, func(ctx context.Context, c *Client) error {
				_, _, err := c.GetManifest(ctx, "a", d, nil)
				return err
			}})
		}
	}
	f := newFake(t, authNone)
	c := newClient(t, f.reg.URL)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run(context.Background(), c)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			if IsUnavailable(err) || IsNotFound(err) {
				t.Errorf("invalid input classified as unavailable or not found")
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Errorf("error text has raw control characters: %q", err)
			}
		})
	}
	if n, _, _ := f.stats(); n != 0 {
		t.Errorf("%d requests reached the upstream", n)
	}
	if _, _, err := c.GetBlob(context.Background(), "a", good, -1); !errors.Is(err, ErrInvalidOffset) || IsUnavailable(err) {
		t.Errorf("negative offset: %v", err)
	}

	for _, n := range []string{"a", "library/busybox", "a.b/c_d/e__f/g-h/i---j", "0/1/2", strings.Repeat("a", 255)} {
		if !validName(n) {
			t.Errorf("validName(%q) = false", n)
		}
	}
	for _, tag := range []string{"latest", "v1.2.3", "_x", "1.0-rc_1", strings.Repeat("t", 128)} {
		if !validTag(tag) {
			t.Errorf("validTag(%q) = false", tag)
		}
	}
}

func TestTags(t *testing.T) {
	ctx := context.Background()
	f := newFake(t, authBearer)
	f.addManifest("a", "v1", ociManifestType, ociManifest(1))
	c := newClient(t, f.reg.URL)
	tags, err := c.Tags(ctx, "a")
	if err != nil || len(tags) != 1 || tags[0] != "v1" {
		t.Fatalf("Tags = %q, %v", tags, err)
	}
	if _, err := c.Tags(ctx, "missing"); !IsNotFound(err) {
		t.Errorf("Tags(missing) = %v", err)
	}
}

func TestTagsPagination(t *testing.T) {
	pages := map[string]struct {
		tags []string
		link string
	}{
		"":  {[]string{"a", "b"}, `</v2/r/tags/list?last=b&n=2>; rel="next"`},
		"b": {[]string{"c", "d"}, `<http://%s/v2/r/tags/list?last=d&n=2>; rel=next, </other>; rel="prev"`},
		"d": {[]string{"e"}, ""},
		"x": {[]string{"z"}, `<http://127.0.0.1:1/v2/r/tags/list?last=y>; rel="next"`},
	}
	serve := func(first string) func(w http.ResponseWriter, r *http.Request) bool {
		return func(w http.ResponseWriter, r *http.Request) bool {
			last := r.URL.Query().Get("last")
			if last == "" {
				last = first
			}
			p := pages[last]
			if p.link != "" {
				w.Header().Set("Link", strings.ReplaceAll(p.link, "%s", r.Host))
			}
			fmt.Fprintf(w, `{"name":"r","tags":["%s"]}`, strings.Join(p.tags, `","`))
			return true
		}
	}
	f := newFake(t, authNone)
	f.handle = serve("")
	c := newClient(t, f.reg.URL)
	tags, err := c.Tags(context.Background(), "r")
	if err != nil || strings.Join(tags, ",") != "a,b,c,d,e" {
		t.Fatalf("Tags = %q, %v", tags, err)
	}
	f.handle = serve("x")
	if _, err := c.Tags(context.Background(), "r"); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("Link to another origin: %v", err)
	}
}

func TestPathPrefix(t *testing.T) {
	f := newFake(t, authNone)
	f.handle = func(w http.ResponseWriter, r *http.Request) bool {
		if p, ok := strings.CutPrefix(r.URL.Path, "/mirror"); ok {
			r.URL.Path = p
			return false
		}
		w.WriteHeader(http.StatusTeapot)
		return true
	}
	dgst := f.addManifest("a", "latest", ociManifestType, ociManifest(1))
	c := newClient(t, f.reg.URL+"/mirror/")
	d, err := c.HeadManifest(context.Background(), "a", "latest", nil)
	if err != nil || d.Digest != dgst {
		t.Fatalf("HeadManifest = %+v, %v", d, err)
	}
	if p := f.seen()[0].URL.Path; p != "/mirror/v2/a/manifests/latest" {
		t.Errorf("path = %q", p)
	}
}
