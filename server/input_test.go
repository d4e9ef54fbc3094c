package server_test

import (
	"net/http"
	"net/url"
	"testing"
)

// TestUnsafeText checks that the API refuses, as field errors, what would fail only later or
// mislead a reader: NUL in any string field or filter (DRF's message), control and
// bidirectional override characters in names and base paths, URLs of other schemes than
// http and https, and remote headers that could end a header line. Nothing is created.
func TestUnsafeText(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		remote := e.create(remotes, map[string]any{"name": "hub", "url": "https://registry-1.docker.io", "upstream_name": "library/busybox"})
		ptRemote := e.create(ptRemotes, map[string]any{"name": "pt-hub", "url": "https://registry-1.docker.io"})
		const (
			null     = `["Null characters are not allowed."]`
			controls = `["Control characters and bidirectional override characters are not allowed."]`
			scheme   = `["Only http and https URLs are allowed."]`
		)
		cases := []struct {
			name, method, path string
			body               any
			want               string
		}{
			{"NUL in a name", "POST", ptRemotes, map[string]any{"name": "a\x00b", "url": "https://x.example"}, `{"name": ` + null + `}`},
			{"NUL in a description", "POST", distributions, map[string]any{"name": "d", "base_path": "d", "description": "a\x00"}, `{"description": ` + null + `}`},
			{"NUL in a password", "POST", ptRemotes, map[string]any{"name": "p", "url": "https://x.example", "password": "\x00"}, `{"password": ` + null + `}`},
			{"NUL in a list item", "POST", ptRemotes, map[string]any{"name": "i", "url": "https://x.example", "includes": []string{"a\x00"}}, `{"includes": ` + null + `}`},
			{"NUL in a label value", "POST", repositories, map[string]any{"name": "r", "pulp_labels": map[string]string{"k": "v\x00"}}, `{"pulp_labels": ` + null + `}`},
			{"NUL in a form", "POST", ptRemotes, url.Values{"name": {"a\x00b"}, "url": {"https://x.example"}}, `{"name": ` + null + `}`},
			{"NUL in a repository name", "POST", repositories, map[string]any{"name": "r\x00"}, `{"name": ` + null + `}`},
			{"NUL in a namespace name", "POST", namespaces, map[string]any{"name": "ns\x00"}, `{"name": ` + null + `}`},
			{"NUL in a label set", "POST", href(remote) + "set_label/", map[string]any{"key": "k", "value": "\x00"}, `{"value": ` + null + `}`},
			{"right-to-left override in a name", "POST", ptRemotes, map[string]any{"name": "evil\u202egpj.exe", "url": "https://x.example"}, `{"name": ` + controls + `}`},
			{"isolate in a distribution name", "POST", distributions, map[string]any{"name": "a\u2066b", "base_path": "ab"}, `{"name": ` + controls + `}`},
			{"bell in a repository name", "POST", repositories, map[string]any{"name": "a\x07b"}, `{"name": ` + controls + `}`},
			{"C1 control in a name", "POST", ptRemotes, map[string]any{"name": "a\u0085b", "url": "https://x.example"}, `{"name": ` + controls + `}`},
			{"newline in an upstream name", "POST", remotes, map[string]any{"name": "u", "url": "https://x.example", "upstream_name": "library/a\nb"}, `{"upstream_name": ` + controls + `}`},
			{"override in a pull-through base path", "POST", ptDistribution, map[string]any{"name": "pt", "base_path": "pt\u202dx", "remote": href(ptRemote)}, `{"base_path": ` + controls + `}`},
			{"file URL", "POST", ptRemotes, map[string]any{"name": "f", "url": "file:///etc/passwd"}, `{"url": ` + scheme + `}`},
			{"ftp URL", "POST", remotes, map[string]any{"name": "f", "url": "ftp://x.example", "upstream_name": "x"}, `{"url": ` + scheme + `}`},
			{"URL without a scheme", "POST", ptRemotes, map[string]any{"name": "f", "url": "registry-1.docker.io"}, `{"url": ` + scheme + `}`},
			{"URL without a host", "POST", ptRemotes, map[string]any{"name": "f", "url": "https://"}, `{"url": ["Enter a valid URL."]}`},
			{"socks proxy", "POST", ptRemotes, map[string]any{"name": "f", "url": "https://x.example", "proxy_url": "socks5://proxy:1080"}, `{"proxy_url": ` + scheme + `}`},
			{"URL scheme on update", "PATCH", href(ptRemote), map[string]any{"url": "gopher://x.example"}, `{"url": ` + scheme + `}`},
			{"CR LF in a header value", "POST", ptRemotes, map[string]any{"name": "h", "url": "https://x.example",
				"headers": []any{map[string]any{"X-Token": "a\r\nX-Injected: 1"}}}, `{"headers": ["Header values cannot contain CR, LF or NUL characters."]}`},
			{"LF in a header value on update", "PATCH", href(remote), map[string]any{"headers": []any{map[string]any{"X-Token": "a\nb"}}},
				`{"headers": ["Header values cannot contain CR, LF or NUL characters."]}`},
			{"header name with a space", "POST", ptRemotes, map[string]any{"name": "h", "url": "https://x.example",
				"headers": []any{map[string]any{"X Token": "a"}}}, `{"headers": ["Header names must be HTTP tokens."]}`},
			{"NUL in a filter", "GET", ptRemotes + "?name=a%00b", nil, `{"name": ` + null + `}`},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e.do(c.method, c.path, c.body).bodyIs(t, http.StatusBadRequest, c.want)
			})
		}
		t.Run("allowed", func(t *testing.T) {
			e.create(ptRemotes, map[string]any{"name": "café – ünïcode", "url": "HTTP://Mirror.Example:5000/v2",
				"proxy_url": "https://proxy.example:3128", "headers": []any{map[string]any{"X-Token": "a b\tc"}}})
		})
		if n := len(e.get(ptRemotes).results(t)); n != 2 {
			t.Errorf("%d pull-through remotes, want 2", n)
		}
		for _, p := range []string{repositories, distributions, namespaces} {
			if n := len(e.get(p).results(t)); n != 0 {
				t.Errorf("%s: %d objects after refused creates", p, n)
			}
		}
		if got := e.get(href(remote)).obj(t)["headers"]; got != nil {
			t.Errorf("headers %v after a refused update", got)
		}
	})
}
