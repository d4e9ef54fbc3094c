package deploy

import (
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
)

// lbRoute is one location of nginx.conf that proxies: exact or prefix path to an upstream.
type lbRoute struct {
	path     string
	exact    bool
	upstream string
}

// lbConfig is the routing of docs/deploy/nginx.conf: its upstreams (servers as
// service:port) and its proxying locations.
type lbConfig struct {
	upstreams map[string][]string
	routes    []lbRoute
}

var (
	nginxUpstream = regexp.MustCompile(`upstream\s+(\S+)\s*\{([^}]*)\}`)
	nginxServer   = regexp.MustCompile(`server\s+([^\s;]+)`)
	nginxLocation = regexp.MustCompile(`location\s+(=\s*)?(\S+)\s*\{\s*proxy_pass\s+http://([^;/\s]+)\s*;\s*\}`)
)

// readLBConfig parses the upstreams and proxy_pass locations of nginx.conf (the subset of
// nginx the file uses; every other location answers by itself and is not proxied).
func readLBConfig(t testing.TB) lbConfig {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "deploy", "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	c := lbConfig{upstreams: map[string][]string{}}
	for _, m := range nginxUpstream.FindAllStringSubmatch(string(b), -1) {
		for _, s := range nginxServer.FindAllStringSubmatch(m[2], -1) {
			c.upstreams[m[1]] = append(c.upstreams[m[1]], s[1])
		}
	}
	for _, m := range nginxLocation.FindAllStringSubmatch(string(b), -1) {
		if _, ok := c.upstreams[m[3]]; !ok {
			t.Fatalf("nginx.conf: location %s proxies to %s, which is no upstream", m[2], m[3])
		}
		c.routes = append(c.routes, lbRoute{path: m[2], exact: m[1] != "", upstream: m[3]})
	}
	// nginx: an exact match wins, then the longest prefix.
	sort.SliceStable(c.routes, func(i, j int) bool {
		if c.routes[i].exact != c.routes[j].exact {
			return c.routes[i].exact
		}
		return len(c.routes[i].path) > len(c.routes[j].path)
	})
	return c
}

// route returns the upstream of path, "" when no location proxies it.
func (c lbConfig) route(path string) string {
	for _, r := range c.routes {
		if r.exact && path == r.path || !r.exact && strings.HasPrefix(path, r.path) {
			return r.upstream
		}
	}
	return ""
}

// lb is a Go reverse proxy standing in for nginx: it routes as nginx.conf does, to the
// local addresses of the upstreams' servers, round robin, and counts requests per server.
type lb struct {
	cfg   lbConfig
	addrs map[string]string // service:port -> local address

	mu     sync.Mutex
	next   map[string]int
	served map[string]int // server -> requests
}

func newLB(cfg lbConfig, addrs map[string]string) *lb {
	return &lb{cfg: cfg, addrs: addrs, next: map[string]int{}, served: map[string]int{}}
}

func (l *lb) pick(upstream string) (server, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	servers := l.cfg.upstreams[upstream]
	server = servers[l.next[upstream]%len(servers)]
	l.next[upstream]++
	l.served[server]++
	return server, l.addrs[server]
}

// Served returns how many requests each server got.
func (l *lb) Served() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for k, v := range l.served {
		out[k] = v
	}
	return out
}

func (l *lb) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	up := l.cfg.route(r.URL.Path)
	if up == "" {
		http.NotFound(w, r)
		return
	}
	_, addr := l.pick(up)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", addr
			pr.Out.Host = pr.In.Host // nginx: proxy_set_header Host $http_host
			pr.SetXForwarded()
		},
		FlushInterval: -1,
	}
	rp.ServeHTTP(w, r)
}

// TestLBConfig: nginx.conf sends the API to the api service and the registry and its token
// endpoint to both content services, and nothing else anywhere.
func TestLBConfig(t *testing.T) {
	c := readLBConfig(t)
	for path, want := range map[string]string{
		"/pulp/api/v3/status/": "api:24817", "/v2/": "content-1:24816,content-2:24816",
		"/v2": "content-1:24816,content-2:24816", "/v2/hub/library/x/manifests/latest": "content-1:24816,content-2:24816",
		"/token/": "content-1:24816,content-2:24816", "/metrics": "", "/pulp/api/v3": "", "/v2x": "",
	} {
		got := ""
		if up := c.route(path); up != "" {
			got = strings.Join(c.upstreams[up], ",")
		}
		if got != want {
			t.Errorf("%s routed to %q, want %q", path, got, want)
		}
	}
}
