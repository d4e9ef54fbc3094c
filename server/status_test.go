package server_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/server"
	"github.com/pulpgo/pulpgo/test/testenv"
)

func TestStatus(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		r := e.get(api+"status/", noAuth).expect(t, http.StatusOK)
		m := r.obj(t)
		keys := []string{"versions", "online_workers", "online_api_apps", "online_content_apps",
			"database_connection", "redis_connection", "storage", "content_settings", "domain_enabled"}
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Errorf("status has no %q: %s", k, r.Body)
			}
		}
		if len(m) != len(keys) {
			t.Errorf("status has %d keys, want %d: %s", len(m), len(keys), r.Body)
		}
		versions, _ := m["versions"].([]any)
		want := []map[string]any{
			{"component": "core", "version": "3.116.0", "package": "pulpcore", "module": "pulpcore.app", "domain_compatible": true},
			{"component": "container", "version": "2.29.0", "package": "pulp-container", "module": "pulp_container.app", "domain_compatible": true},
		}
		if len(versions) != len(want) {
			t.Fatalf("versions %v, want %v", versions, want)
		}
		for i, w := range want {
			got := versions[i].(map[string]any)
			if fmt.Sprint(got) != fmt.Sprint(w) {
				t.Errorf("versions[%d] = %v, want %v", i, got, w)
			}
		}
		workers, _ := m["online_workers"].([]any)
		if len(workers) != 1 || workers[0].(map[string]any)["name"] != e.worker {
			t.Errorf("online_workers = %v, want the test worker", workers)
		}
		jsonEq(t, mustJSON(t, m["database_connection"]), `{"connected": true}`)
		jsonEq(t, mustJSON(t, m["redis_connection"]), `{"connected": true}`)
		if m["domain_enabled"] != false {
			t.Errorf("domain_enabled = %v", m["domain_enabled"])
		}
	})
}

func TestAuth(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		const basic = `Basic realm="api"`
		cases := []struct {
			name, method, path string
			opt                reqOpt
			code               int
			body               string // "" when not checked
			challenge          bool
		}{
			{"no credentials", "GET", ptRemotes, noAuth, 401, `{"detail": "Authentication credentials were not provided."}`, true},
			{"no credentials on a POST", "POST", ptRemotes, noAuth, 401, `{"detail": "Authentication credentials were not provided."}`, true},
			{"no credentials on tasks", "GET", taskList, noAuth, 401, `{"detail": "Authentication credentials were not provided."}`, true},
			{"wrong password", "GET", ptRemotes, withAuth("admin", "wrong"), 401, `{"detail": "Invalid username/password."}`, true},
			{"wrong user", "GET", ptRemotes, withAuth("alice", adminPassword), 401, `{"detail": "Invalid username/password."}`, true},
			{"admin", "GET", ptRemotes, withAuth("admin", adminPassword), 200, "", false},
			{"status is anonymous", "GET", api + "status/", noAuth, 200, "", false},
			{"livez is anonymous", "GET", api + "livez/", noAuth, 200, "", false},
			{"api.json is anonymous", "GET", api + "docs/api.json", noAuth, 200, "", false},
			{"status with a wrong password", "GET", api + "status/", withAuth("admin", "wrong"), 200, "", false},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var body any
				if c.method == "POST" {
					body = map[string]string{"name": "x", "url": "https://x"}
				}
				r := e.do(c.method, c.path, body, c.opt).expect(t, c.code)
				if c.body != "" {
					jsonEq(t, r.Body, c.body)
				}
				if got := r.Header.Get("WWW-Authenticate"); c.challenge && got != basic {
					t.Errorf("WWW-Authenticate = %q, want %q", got, basic)
				}
			})
		}
		// The refused POST created nothing.
		if n := len(e.get(ptRemotes).results(t)); n != 0 {
			t.Errorf("%d remotes after unauthenticated POST", n)
		}
	})
}

// TestAuthEmptyPassword checks that an API configured with an empty admin password lets
// nobody in: "admin:" (an empty password) is refused like any wrong password.
func TestAuthEmptyPassword(t *testing.T) {
	t.Parallel()
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		e := newEnvPassword(t, eng, nil, "")
		for _, pass := range []string{"", adminPassword} {
			e.get(ptRemotes, withAuth("admin", pass)).bodyIs(t, http.StatusUnauthorized, `{"detail": "Invalid username/password."}`)
			e.post(ptRemotes, map[string]string{"name": "x", "url": "https://x"}, withAuth("admin", pass)).
				bodyIs(t, http.StatusUnauthorized, `{"detail": "Invalid username/password."}`)
		}
		e.get(api+"status/", noAuth).expect(t, http.StatusOK)
	})
}

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

// rawHeaders sends a GET over a plain connection and returns the response's header lines as
// written on the wire (Go's client would canonicalize their names).
func (e *env) rawHeaders(t *testing.T, path string, header map[string]string) []string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", e.host, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", path, e.host)
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(conn)
	var lines []string
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("read response: %v", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return lines[1:]
		}
		lines = append(lines, line)
	}
}

// wireHeader returns the values of the header lines named exactly name.
func wireHeader(lines []string, name string) []string {
	var out []string
	for _, l := range lines {
		if k, v, ok := strings.Cut(l, ":"); ok && k == name {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

func TestCorrelationID(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		const cid = "4d6e1a4657684bad9c9a6fa6ecc1cf91"
		t.Run("valid is echoed", func(t *testing.T) {
			lines := e.rawHeaders(t, api+"status/", map[string]string{"Correlation-ID": cid})
			if got := wireHeader(lines, "Correlation-ID"); len(got) != 1 || got[0] != cid {
				t.Errorf("Correlation-ID lines %v, want [%s]; headers %q", got, cid, lines)
			}
			if got := wireHeader(lines, "Access-Control-Expose-Headers"); len(got) != 1 || got[0] != "Correlation-ID" {
				t.Errorf("Access-Control-Expose-Headers %v", got)
			}
		})
		t.Run("header map key", func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", api+"status/", nil)
			req.Header.Set("Correlation-ID", cid)
			e.handler.ServeHTTP(rec, req)
			if got := rec.Header()["Correlation-ID"]; len(got) != 1 || got[0] != cid {
				t.Errorf(`Header()["Correlation-ID"] = %q, want [%s]; header %v`, got, cid, rec.Header())
			}
			if _, ok := rec.Header()["Correlation-Id"]; ok {
				t.Errorf("header also has the canonical spelling Correlation-Id: %v", rec.Header())
			}
		})
		t.Run("sent when absent", func(t *testing.T) {
			lines := e.rawHeaders(t, api+"status/", nil)
			if got := wireHeader(lines, "Correlation-ID"); len(got) != 1 || !hex32.MatchString(got[0]) {
				t.Errorf("Correlation-ID lines %v, want one of 32 hex; headers %q", got, lines)
			}
		})
		for _, bad := range []string{"not-a-uuid", "4d6e1a4657684bad9c9a6fa6ecc1cf9", "4d6e1a4657684bad9c9a6fa6ecc1cf91zz"} {
			t.Run("invalid "+bad, func(t *testing.T) {
				lines := e.rawHeaders(t, api+"status/", map[string]string{"Correlation-ID": bad})
				got := wireHeader(lines, "Correlation-ID")
				if len(got) != 1 || !hex32.MatchString(got[0]) || got[0] == bad {
					t.Errorf("Correlation-ID %v for %q: want a fresh 32-hex id", got, bad)
				}
			})
		}
		t.Run("fresh ids differ", func(t *testing.T) {
			a := e.get(api + "status/").Header.Get("Correlation-ID")
			b := e.get(api + "status/").Header.Get("Correlation-ID")
			if a == b || !hex32.MatchString(a) || !hex32.MatchString(b) {
				t.Errorf("two fresh ids %q and %q", a, b)
			}
		})
		t.Run("becomes the task's logging_cid", func(t *testing.T) {
			rem := e.create(ptRemotes, map[string]any{"name": "cid", "url": "https://a.example"})
			r := e.patch(href(rem), map[string]any{"url": "https://b.example"}, withHeader("Correlation-ID", cid))
			if got := r.Header.Get("Correlation-ID"); got != cid {
				t.Errorf("202 Correlation-ID %q, want %q", got, cid)
			}
			task := e.waitTaskOK(r.taskHref(t))
			if task["logging_cid"] != cid {
				t.Errorf("logging_cid %v, want %s", task["logging_cid"], cid)
			}
			// Without a header, the task gets the generated id of its request.
			r = e.patch(href(rem), map[string]any{"url": "https://c.example"})
			task = e.waitTaskOK(r.taskHref(t))
			if got := r.Header.Get("Correlation-ID"); task["logging_cid"] != got || !hex32.MatchString(got) {
				t.Errorf("logging_cid %v, response Correlation-ID %q", task["logging_cid"], got)
			}
		})
	})
}

func TestContentTypeJSON(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		rem := e.create(ptRemotes, map[string]any{"name": "ct", "url": "https://a.example"})
		cases := []struct {
			name string
			r    func() *resp
		}{
			{"status", func() *resp { return e.get(api+"status/", noAuth) }},
			{"list", func() *resp { return e.get(ptRemotes) }},
			{"read", func() *resp { return e.get(href(rem)) }},
			{"201", func() *resp { return e.post(namespaces, map[string]any{"name": "ctns"}) }},
			{"202", func() *resp { return e.patch(href(rem), map[string]any{"url": "https://b.example"}) }},
			{"400", func() *resp { return e.post(ptRemotes, map[string]any{}) }},
			{"400 malformed", func() *resp { return e.post(ptRemotes, rawJSON(`{"name": `)) }},
			{"401", func() *resp { return e.get(ptRemotes, noAuth) }},
			{"404", func() *resp { return e.get(ptRemotes + "not-a-uuid/") }},
			{"404 unknown", func() *resp { return e.get(ptRemotes + "00000000-0000-0000-0000-000000000000/") }},
			{"405", func() *resp { return e.put(namespaces, map[string]any{}) }},
			{"unknown filter", func() *resp { return e.get(ptRemotes + "?x=1") }},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := c.r()
				if got := r.Header.Values("Content-Type"); len(got) != 1 || got[0] != "application/json" {
					t.Errorf("status %d: Content-Type %q, want exactly application/json", r.Status, got)
				}
			})
		}
	})
}

func TestMethodNotAllowed(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		r := e.put(namespaces, map[string]any{})
		r.bodyIs(t, 405, `{"detail": "Method \"PUT\" not allowed."}`)
		if got := r.Header.Get("Allow"); got != "GET, POST, HEAD, OPTIONS" {
			t.Errorf("Allow on 405 = %q, want Pulp's %q", got, "GET, POST, HEAD, OPTIONS")
		}
	})
}

// TestAllowAndOptions checks the Allow header Pulp sends on every response, and that OPTIONS
// describes an endpoint instead of answering 405.
func TestAllowAndOptions(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		for path, want := range map[string]string{
			namespaces:                   "GET, POST, HEAD, OPTIONS",
			"/pulp/api/v3/status/":       "GET, HEAD, OPTIONS",
			"/pulp/api/v3/tasks/":        "GET, HEAD, OPTIONS",
			"/pulp/api/v3/repositories/": "GET, HEAD, OPTIONS",
		} {
			if got := e.get(path).Header.Get("Allow"); got != want {
				t.Errorf("GET %s: Allow %q, want %q", path, got, want)
			}
			r := e.do(http.MethodOptions, path, nil)
			if r.Status != 200 || r.Header.Get("Allow") != want {
				t.Errorf("OPTIONS %s: %d, Allow %q; want 200 and %q", path, r.Status, r.Header.Get("Allow"), want)
			}
		}
	})
}

func TestVersionMapMatchesVersions(t *testing.T) {
	m := server.VersionMap()
	if len(m) != 2 || m["core"] != "3.116.0" || m["container"] != "2.29.0" {
		t.Errorf("VersionMap() = %v", m)
	}
}
