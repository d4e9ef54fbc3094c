package server_test

import (
	"net/http"
	"testing"
)

// TestTrailingSlash: a path without its slash is redirected to the one with it (Django's
// APPEND_SLASH); a method a path with its slash lacks is 405, never a redirect that drops the
// slash; a path nothing has is 404.
func TestTrailingSlash(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		cases := []struct {
			method, path string
			status       int
			location     string
		}{
			{"GET", repositories[:len(repositories)-1] + "?limit=1", 301, repositories + "?limit=1"},
			{"POST", repositories[:len(repositories)-1], 307, repositories},
			{"GET", repositories + "00000000-0000-0000-0000-000000000000", 301, repositories + "00000000-0000-0000-0000-000000000000/"},
			{"DELETE", repositories, 405, ""},
			{"DELETE", api + "repositories/container/container-push/00000000-0000-0000-0000-000000000000/", 405, ""},
			{"POST", taskList, 405, ""},
			{"GET", api + "nothing-here/", 404, ""},
			{"GET", api + "nothing-here", 404, ""},
		}
		for _, c := range cases {
			req, err := http.NewRequest(c.method, e.url+c.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.SetBasicAuth("admin", adminPassword)
			r, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if r.StatusCode != c.status || r.Header.Get("Location") != c.location {
				t.Errorf("%s %s: %d %q, want %d %q", c.method, c.path, r.StatusCode, r.Header.Get("Location"), c.status, c.location)
			}
		}
	})
}
