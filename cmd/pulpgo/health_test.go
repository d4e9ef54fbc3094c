package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestHealth: /livez answers 200 whatever the dependencies; /readyz answers 200 when every
// check passes and 503 in JSON naming the failed ones (never their error text) otherwise;
// other requests, and other methods on the probe paths, reach the wrapped handler.
func TestHealth(t *testing.T) {
	var dbErr error
	hc := newHealth(map[string]func(context.Context) error{
		"database": func(context.Context) error { return dbErr },
		"redis":    func(context.Context) error { return nil },
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv := httptest.NewServer(hc.serve(next))
	defer srv.Close()

	get := func(method, path string) (int, map[string]string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]string
		if resp.StatusCode != http.StatusTeapot && method == http.MethodGet {
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("%s %s: decode: %v", method, path, err)
			}
		}
		return resp.StatusCode, body
	}

	if code, _ := get("GET", "/livez"); code != 200 {
		t.Errorf("livez: %d, want 200", code)
	}
	if code, body := get("GET", "/readyz"); code != 200 || body["database"] != "ok" || body["redis"] != "ok" {
		t.Errorf("readyz with all up: %d %v, want 200 with database and redis ok", code, body)
	}
	dbErr = errors.New("dial tcp 10.0.0.1:5432: connect: connection refused (user=secret)")
	code, body := get("GET", "/readyz")
	if code != 503 || body["database"] != "unavailable" || body["redis"] != "ok" || body["detail"] != "not ready: database unavailable" {
		t.Errorf("readyz with the database down: %d %v, want 503 naming database", code, body)
	}
	for k, v := range body {
		if v == dbErr.Error() || k == "error" {
			t.Errorf("readyz returned the check's error text: %v", body)
		}
	}
	if code, _ := get("GET", "/livez"); code != 200 {
		t.Errorf("livez with the database down: %d, want 200 (the process is alive)", code)
	}
	if code, _ := get("HEAD", "/readyz"); code != 503 {
		t.Errorf("HEAD readyz with the database down: %d, want 503", code)
	}
	for _, tc := range []struct{ method, path string }{{"POST", "/livez"}, {"GET", "/livez/x"}, {"GET", "/v2/"}} {
		if code, _ := get(tc.method, tc.path); code != http.StatusTeapot {
			t.Errorf("%s %s: %d, want the wrapped handler's 418", tc.method, tc.path, code)
		}
	}
}
