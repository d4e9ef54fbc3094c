package main

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPlainHTTPRedirect: the redirect keeps path and query and goes to the HTTPS port; a
// Host that is not one of the certificate's names (a forged one) is sent to the first plain
// name instead, a wildcard name covers one label, and an https content origin wins.
func TestPlainHTTPRedirect(t *testing.T) {
	names := []string{"*.mirror.example", "registry.example"}
	cases := []struct {
		origin, port, host string
		names              []string
		code               int
		want               string
	}{
		{"", "8443", "registry.example:8080", names, 308, "https://registry.example:8443/v2/x?ns=docker.io"},
		{"", "443", "REGISTRY.example", names, 308, "https://REGISTRY.example/v2/x?ns=docker.io"},
		{"", "443", "a.mirror.example", names, 308, "https://a.mirror.example/v2/x?ns=docker.io"},
		{"", "443", "evil.example", names, 308, "https://registry.example/v2/x?ns=docker.io"},
		{"", "443", "a.b.mirror.example", names, 308, "https://registry.example/v2/x?ns=docker.io"},
		{"", "443", "evil.example", []string{"*.mirror.example"}, 400, ""},
		{"", "443", "any.example", nil, 308, "https://any.example/v2/x?ns=docker.io"},
		{"https://origin.example", "8443", "evil.example", names, 308, "https://origin.example/v2/x?ns=docker.io"},
	}
	for _, c := range cases {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "http://placeholder/v2/x?ns=docker.io", nil)
		r.Host = c.host
		plainHTTPHandler(true, c.origin, c.port, c.names).ServeHTTP(w, r)
		if w.Code != c.code || w.Header().Get("Location") != c.want {
			t.Errorf("Host %q, names %v: %d %q; want %d %q", c.host, c.names, w.Code, w.Header().Get("Location"), c.code, c.want)
		}
	}
	// An opaque request target cannot move the redirect to another host.
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET x:@evil.example/p HTTP/1.1\r\nHost: registry.example\r\n\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	plainHTTPHandler(true, "", "443", names).ServeHTTP(w, r)
	if loc := w.Header().Get("Location"); w.Code != http.StatusBadRequest || loc != "" {
		t.Errorf("opaque request target: %d %q; want 400 and no Location", w.Code, loc)
	}
	w = httptest.NewRecorder()
	plainHTTPHandler(false, "", "443", names).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://registry.example/v2/", nil))
	if w.Code != http.StatusNotFound || w.Header().Get("Location") != "" {
		t.Errorf("without redirect: %d %q; want 404", w.Code, w.Header().Get("Location"))
	}
}
