package e2e_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// badCase is one bad request and Pulp's answer to it.
type badCase struct {
	name string
	// send sends the request and returns the answer.
	send func(t *testing.T) response
	// status and body are Pulp's answer; body is JSON compared after decoding, unless
	// detailPrefix is set, in which case the body must be {"detail": "<detailPrefix>..."}.
	status       int
	body         string
	detailPrefix string
	// header holds response headers that must have exactly these values.
	header map[string]string
	// unchanged lists hrefs of objects the request names, which must read the same after it.
	unchanged []string
}

// fixtures are the objects the bad requests collide with or refer to.
type fixtures struct {
	ptRemote, repo, repo2, dist, namespace, ptDist string
}

// TestBadInput sends malformed JSON, unknown fields, unknown hrefs, duplicate names,
// anonymous writes and wrong passwords through Go's HTTP client, curl and httpie. For each it
// checks Pulp's status and error body, and that nothing changed: every list keeps its count
// (no object and no task was created) and the objects it names read the same.
func TestBadInput(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		f := makeFixtures(t, e)
		before := snapshot(t, e)
		for _, c := range badCases(e, f) {
			t.Run(c.name, func(t *testing.T) {
				objects := map[string]string{}
				for _, href := range c.unchanged {
					objects[href] = string(e.api.do(t, http.MethodGet, href, nil).body)
				}
				r := c.send(t)
				if r.status != c.status {
					t.Errorf("status %d, want %d; body %s", r.status, c.status, clip(r.body))
				}
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q, want application/json", ct)
				}
				for k, v := range c.header {
					if got := r.header.Get(k); got != v {
						t.Errorf("header %s = %q, want %q", k, got, v)
					}
				}
				got := r.json(t)
				if c.detailPrefix != "" {
					m, _ := got.(map[string]any)
					d, _ := m["detail"].(string)
					if len(m) != 1 || !strings.HasPrefix(d, c.detailPrefix) {
						t.Errorf("body %s, want {\"detail\": %q...}", r.body, c.detailPrefix)
					}
				} else if want := jsonValue(t, c.body); !reflect.DeepEqual(got, want) {
					t.Errorf("body %s, want %s", r.body, c.body)
				}
				for href, was := range objects {
					if now := string(e.api.do(t, http.MethodGet, href, nil).body); now != was {
						t.Errorf("%s changed:\nbefore %s\nafter  %s", href, was, now)
					}
				}
			})
		}
		if after := snapshot(t, e); !reflect.DeepEqual(after, before) {
			t.Errorf("list counts changed:\nbefore %v\nafter  %v", before, after)
		}
	})
}

// makeFixtures creates a pull-through remote, two repositories, a distribution, a namespace
// and a pull-through distribution at bad-cache.
func makeFixtures(t *testing.T, e *env) fixtures {
	t.Helper()
	var f fixtures
	f.ptRemote = e.api.expect(t, http.MethodPost, ptRemotesPath,
		map[string]any{"name": "docker-cache", "url": "https://registry-1.docker.io"}, http.StatusCreated)["pulp_href"].(string)
	f.repo = e.api.expect(t, http.MethodPost, reposPath, map[string]any{"name": "bad-repo"}, http.StatusCreated)["pulp_href"].(string)
	f.repo2 = e.api.expect(t, http.MethodPost, reposPath, map[string]any{"name": "bad-repo-2"}, http.StatusCreated)["pulp_href"].(string)
	task := e.api.async(t, http.MethodPost, distsPath, map[string]any{"name": "bad-dist", "base_path": "bad/dist", "repository": f.repo})
	f.dist = createdResource(t, task)
	f.namespace = e.api.expect(t, http.MethodPost, namespacesPath, map[string]any{"name": "bad-ns"}, http.StatusCreated)["pulp_href"].(string)
	task = e.api.async(t, http.MethodPost, ptDistsPath, map[string]any{"name": "bad-cache", "base_path": "bad-cache", "remote": f.ptRemote})
	f.ptDist = createdResource(t, task)
	return f
}

// snapshot counts the objects of every list the bad requests could add to.
func snapshot(t *testing.T, e *env) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, p := range []string{remotesPath, ptRemotesPath, reposPath, distsPath, ptDistsPath, namespacesPath, tasksPath} {
		counts[p] = e.api.count(t, p)
	}
	return counts
}

// badCases lists the bad requests; f holds the hrefs they refer to.
func badCases(e *env, f fixtures) []badCase {
	base := e.srv.URL
	admin := e.api
	anonymous := newAPIClient(base, "", "")
	wrong := newAPIClient(base, "admin", "wrong")
	stranger := newAPIClient(base, "nobody", "password")

	goSend := func(c *apiClient, method, path, contentType, body string) func(t *testing.T) response {
		return func(t *testing.T) response { return c.raw(t, method, path, contentType, body) }
	}
	// curl sends with -i and the given arguments (credentials from ~/.netrc with --netrc).
	curl := func(args ...string) func(t *testing.T) response {
		return func(t *testing.T) response {
			r := e.home.Run(t, "curl", append([]string{"-sS", "-i", "--max-time", "30"}, args...)...).Must(t)
			return parseHTTP(t, r.Command, r.Stdout)
		}
	}
	// httpie prints the status line, headers and body (credentials from ~/.netrc by default).
	httpie := func(args ...string) func(t *testing.T) response {
		return func(t *testing.T) response {
			r := e.home.Run(t, "http", append([]string{"--print=hb"}, args...)...).Must(t)
			return parseHTTP(t, r.Command, r.Stdout)
		}
	}
	missingRepo := reposPath + missingID + "/"
	missingPTRemote := ptRemotesPath + missingID + "/"
	const (
		jsonCT       = "application/json"
		parseError   = "JSON parse error - "
		unique       = `["This field must be unique."]`
		notExist     = `["Invalid hyperlink - Object does not exist."]`
		noCreds      = `{"detail": "Authentication credentials were not provided."}`
		badPassword  = `{"detail": "Invalid username/password."}`
		unexpected   = `["Unexpected field"]`
		basicChallge = `Basic realm="api"`
	)
	challenge := map[string]string{"WWW-Authenticate": basicChallge}

	return []badCase{
		// Malformed JSON: the same truncated body through each client.
		{name: "malformed-json/go", send: goSend(admin, "POST", ptRemotesPath, jsonCT, `{"name": "broken`),
			status: 400, detailPrefix: parseError},
		{name: "malformed-json/curl", send: curl("--netrc", "-H", "Content-Type: application/json",
			"--data-binary", `{"name": "broken`, base+ptRemotesPath), status: 400, detailPrefix: parseError},
		{name: "malformed-json/httpie", send: httpie("POST", base+ptRemotesPath, "--raw", `{"name": "broken`),
			status: 400, detailPrefix: parseError},
		{name: "malformed-json/trailing-data", send: goSend(admin, "POST", distsPath, jsonCT, `{"name":"x","base_path":"x"} trailing`),
			status: 400, detailPrefix: parseError},
		{name: "malformed-json/patch", send: goSend(admin, "PATCH", f.repo, jsonCT, `{"description": `),
			status: 400, detailPrefix: parseError, unchanged: []string{f.repo}},
		{name: "malformed-json/list-body", send: goSend(admin, "POST", reposPath, jsonCT, `[1, 2]`),
			status: 400, body: `{"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}`},

		// Values of the wrong type or media type.
		{name: "wrong-type/bool-name", send: goSend(admin, "POST", reposPath, jsonCT, `{"name": true}`),
			status: 400, body: `{"name": ["Not a valid string."]}`},
		{name: "wrong-type/blank-name", send: httpie("POST", base+reposPath, "name=   "),
			status: 400, body: `{"name": ["This field may not be blank."]}`},
		{name: "wrong-type/list-url", send: goSend(admin, "POST", ptRemotesPath, jsonCT, `{"name": "l", "url": ["https://x"]}`),
			status: 400, body: `{"url": ["Not a valid string."]}`},
		{name: "wrong-type/text-plain", send: curl("--netrc", "-H", "Content-Type: text/plain", "--data-binary", "name=plain", base+reposPath),
			status: 415, body: `{"detail": "Unsupported media type \"text/plain\" in request."}`},

		// Unknown fields, in JSON and form bodies, on create and update.
		{name: "unknown-field/httpie", send: httpie("POST", base+ptRemotesPath, "name=unk", "url=https://x", "foo:=1"),
			status: 400, body: `{"foo": ` + unexpected + `}`},
		{name: "unknown-field/curl-form", send: curl("--netrc", "-d", "name=formunk", "-d", "url=https://x",
			"-d", "bogus=1", base+ptRemotesPath), status: 400, body: `{"bogus": ` + unexpected + `}`},
		{name: "unknown-field/curl-multipart", send: curl("--netrc", "-F", "name=multiunk", "-F", "other=1", base+reposPath),
			status: 400, body: `{"other": ` + unexpected + `}`},
		{name: "unknown-field/distribution", send: goSend(admin, "POST", distsPath, jsonCT,
			`{"name":"unk","base_path":"unk","repository":"`+f.repo+`","foo":1}`),
			status: 400, body: `{"foo": ` + unexpected + `}`},
		{name: "unknown-field/patch", send: goSend(admin, "PATCH", f.repo, jsonCT, `{"foo": 1}`),
			status: 400, body: `{"foo": ` + unexpected + `}`, unchanged: []string{f.repo}},

		// Unknown hrefs and ids.
		{name: "unknown-href/read", send: goSend(admin, "GET", missingPTRemote, "", ""),
			status: 404, body: `{"detail": "No ContainerPullThroughRemote matches the given query."}`},
		{name: "unknown-href/malformed-id", send: goSend(admin, "GET", ptRemotesPath+"not-a-uuid/", "", ""),
			status: 404, body: `{"detail": "Not found."}`},
		{name: "unknown-href/delete", send: curl("--netrc", "-X", "DELETE", base+missingRepo),
			status: 404, body: `{"detail": "No ContainerRepository matches the given query."}`},
		{name: "unknown-href/patch", send: goSend(admin, "PATCH", distsPath+missingID+"/", jsonCT, `{"base_path":"x"}`),
			status: 404, body: `{"detail": "No ContainerDistribution matches the given query."}`},
		{name: "unknown-href/task", send: goSend(admin, "GET", tasksPath+missingID+"/", "", ""),
			status: 404, body: `{"detail": "No Task matches the given query."}`},
		{name: "unknown-href/repository", send: httpie("POST", base+distsPath, "name=nohref", "base_path=nohref",
			"repository="+missingRepo), status: 400, body: `{"repository": ` + notExist + `}`},
		{name: "unknown-href/pull-through-remote", send: httpie("POST", base+ptDistsPath, "name=pt2", "base_path=pt2",
			"remote="+missingPTRemote), status: 400, body: `{"remote": ` + notExist + `}`},
		{name: "unknown-href/remote", send: goSend(admin, "POST", reposPath, jsonCT,
			`{"name":"z","remote":"`+remotesPath+missingID+`/"}`), status: 400, body: `{"remote": ` + notExist + `}`},
		{name: "unknown-href/version", send: goSend(admin, "POST", distsPath, jsonCT,
			`{"name":"v7","base_path":"v7","repository_version":"`+f.repo+`versions/7/"}`),
			status: 400, body: `{"repository_version": ` + notExist + `}`},
		{name: "unknown-href/no-url-match", send: goSend(admin, "POST", distsPath, jsonCT,
			`{"name":"bad","base_path":"bad path!","repository":"/pulp/api/v3/foo/"}`), status: 400,
			body: `{"repository": ["Invalid hyperlink - No URL match."], "base_path": ["The provided base path contains forbidden characters."]}`},
		{name: "unknown-href/wrong-kind", send: goSend(admin, "POST", distsPath, jsonCT,
			`{"name":"kind","base_path":"kind","repository":"`+f.ptRemote+`"}`),
			status: 400, body: `{"repository": ["Invalid hyperlink - Incorrect URL match."]}`},
		{name: "unknown-href/add-content", send: goSend(admin, "POST", f.repo+"add/", jsonCT,
			`{"content_units":["/pulp/api/v3/content/container/tags/`+missingID+`/"]}`), status: 400,
			body:      `["Could not find the following content units: ['/pulp/api/v3/content/container/tags/` + missingID + `/']"]`,
			unchanged: []string{f.repo}},
		{name: "unknown-href/tag-digest", send: httpie("POST", base+f.repo+"tag/", "tag=latest", "digest=sha256:"+strings.Repeat("0", 64)),
			status: 400, body: `{"non_field_errors": ["A manifest with the digest 'sha256:` + strings.Repeat("0", 64) +
				`' does not exist in the latest repository version '<Repository: bad-repo; Version: 0>'"]}`,
			unchanged: []string{f.repo}},
		{name: "unknown-href/copy-tags-no-source", send: goSend(admin, "POST", f.repo+"copy_tags/", jsonCT, `{}`), status: 400,
			body:      `{"non_field_errors": ["Either the 'repository' or 'repository_version' needs to be specified"]}`,
			unchanged: []string{f.repo}},
		{name: "unknown-href/filter", send: curl("--netrc", base+distsPath+"?repository=/pulp/api/v3/nope/"),
			status: 400, body: `["URI couldn't be resolved: /pulp/api/v3/nope/"]`},

		// Text that would fail later or mislead, URLs of other schemes, headers that end a line.
		{name: "unsafe-text/curl-nul", send: curl("--netrc", "-H", "Content-Type: application/json",
			"--data-binary", `{"name": "a\u0000b", "url": "https://x"}`, base+ptRemotesPath),
			status: 400, body: `{"name": ["Null characters are not allowed."]}`},
		{name: "unsafe-text/curl-form-nul", send: curl("--netrc", "-d", "name=nul%00form", "-d", "url=https://x", base+ptRemotesPath),
			status: 400, body: `{"name": ["Null characters are not allowed."]}`},
		{name: "unsafe-text/nul-filter", send: curl("--netrc", base+reposPath+"?name=a%00b"),
			status: 400, body: `{"name": ["Null characters are not allowed."]}`},
		{name: "unsafe-text/httpie-bidi", send: httpie("POST", base+reposPath, "name=evil\u202egpj.exe"),
			status: 400, body: `{"name": ["Control characters and bidirectional override characters are not allowed."]}`},
		{name: "unsafe-text/httpie-file-url", send: httpie("POST", base+ptRemotesPath, "name=file", "url=file:///etc/passwd"),
			status: 400, body: `{"url": ["Only http and https URLs are allowed."]}`},
		{name: "unsafe-text/proxy-url-patch", send: goSend(admin, "PATCH", f.ptRemote, jsonCT, `{"proxy_url": "socks5://p:1080"}`),
			status: 400, body: `{"proxy_url": ["Only http and https URLs are allowed."]}`, unchanged: []string{f.ptRemote}},
		{name: "unsafe-text/header-crlf", send: goSend(admin, "PATCH", f.ptRemote, jsonCT, `{"headers": [{"X-A": "1\r\nX-B: 2"}]}`),
			status: 400, body: `{"headers": ["Header values cannot contain CR, LF or NUL characters."]}`, unchanged: []string{f.ptRemote}},

		// Below a pull-through distribution only its cache makes distributions.
		{name: "reserved-base-path/create", send: httpie("POST", base+distsPath, "name=shadow", "base_path=bad-cache/library/busybox"),
			status: 400, body: `{"base_path": ["Base path is below the pull-through distribution 'bad-cache': only its cache creates distributions there."]}`},
		{name: "reserved-base-path/patch", send: goSend(admin, "PATCH", f.dist, jsonCT, `{"base_path": "bad-cache/dist"}`),
			status: 400, body: `{"base_path": ["Base path is below the pull-through distribution 'bad-cache': only its cache creates distributions there."]}`,
			unchanged: []string{f.dist}},

		// Duplicate names.
		{name: "duplicate/pull-through-remote", send: httpie(base+ptRemotesPath, "name=docker-cache",
			"url=https://registry-1.docker.io"), status: 400, body: `{"name": ` + unique + `}`},
		{name: "duplicate/repository", send: httpie("POST", base+reposPath, "name=bad-repo"),
			status: 400, body: `{"name": ` + unique + `}`},
		{name: "duplicate/repository-rename", send: goSend(admin, "PATCH", f.repo2, jsonCT, `{"name":"bad-repo"}`),
			status: 400, body: `{"name": ` + unique + `}`, unchanged: []string{f.repo, f.repo2}},
		{name: "duplicate/distribution", send: goSend(admin, "POST", distsPath, jsonCT,
			`{"name":"bad-dist","base_path":"bad/dist","repository":"`+missingRepo+`"}`), status: 400,
			body: `{"name": ` + unique + `, "repository": ` + notExist + `, "base_path": ` + unique + `}`},
		{name: "duplicate/namespace", send: curl("--netrc", "-H", "Content-Type: application/json",
			"--data-binary", `{"name":"bad-ns"}`, base+namespacesPath), status: 400, body: `{"name": ` + unique + `}`},

		// Writes without credentials.
		{name: "anonymous/httpie-create", send: httpie("--ignore-netrc", "POST", base+ptRemotesPath, "name=anon", "url=https://x"),
			status: 401, body: noCreds, header: challenge},
		{name: "anonymous/curl-delete", send: curl("-X", "DELETE", base+f.repo),
			status: 401, body: noCreds, header: challenge, unchanged: []string{f.repo}},
		{name: "anonymous/patch", send: goSend(anonymous, "PATCH", f.dist, jsonCT, `{"base_path":"stolen"}`),
			status: 401, body: noCreds, header: challenge, unchanged: []string{f.dist}},
		{name: "anonymous/malformed-json", send: goSend(anonymous, "POST", namespacesPath, jsonCT, `{"name": `),
			status: 401, body: noCreds, header: challenge},
		{name: "anonymous/list", send: goSend(anonymous, "GET", reposPath, "", ""),
			status: 401, body: noCreds, header: challenge},

		// Wrong passwords and unknown users.
		{name: "wrong-password/httpie-create", send: httpie("-a", "admin:wrong", "POST", base+reposPath, "name=wrongpw"),
			status: 401, body: badPassword, header: challenge},
		{name: "wrong-password/curl-delete", send: curl("-u", "admin:wrong", "-X", "DELETE", base+f.dist),
			status: 401, body: badPassword, header: challenge, unchanged: []string{f.dist}},
		{name: "wrong-password/patch", send: goSend(wrong, "PATCH", f.ptRemote, jsonCT, `{"url":"https://evil.example"}`),
			status: 401, body: badPassword, header: challenge, unchanged: []string{f.ptRemote}},
		{name: "wrong-password/empty", send: goSend(newAPIClient(base, "admin", ""), "DELETE", f.namespace, "", ""),
			status: 401, body: badPassword, header: challenge, unchanged: []string{f.namespace}},
		{name: "wrong-password/not-base64", send: curl("-H", "Authorization: Basic !!!", "-X", "DELETE", base+f.repo),
			status: 401, body: `{"detail": "Invalid basic header. Credentials not correctly base64 encoded."}`,
			header: challenge, unchanged: []string{f.repo}},
		{name: "wrong-password/no-credentials", send: curl("-H", "Authorization: Basic", "-X", "POST", base+namespacesPath),
			status: 401, body: `{"detail": "Invalid basic header. No credentials provided."}`, header: challenge},
		{name: "wrong-password/unknown-user", send: goSend(stranger, "POST", namespacesPath, jsonCT, `{"name":"stranger"}`),
			status: 401, body: badPassword, header: challenge},
	}
}

// parseHTTP reads an HTTP response as curl -i and httpie --print=hb print it.
func parseHTTP(t *testing.T, command, out string) response {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), nil)
	if err != nil {
		t.Fatalf("%s: cannot parse its output as an HTTP response (%v):\n%s", command, err, out)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil && len(body) == 0 {
		t.Fatalf("%s: read the body: %v", command, err)
	}
	if !json.Valid(body) {
		// httpie ends the body with a newline; anything else is not JSON.
		body = []byte(strings.TrimSpace(string(body)))
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}
