package upstream

import (
	"crypto/rand"
	"crypto/subtle"
	"net/http"
	"strings"
	"sync"
	"time"
)

const (
	// Service is the service name in the front's challenges and tokens.
	Service = "registry.test"
	// TokenTTL is how long a token from /token stays valid.
	TokenTTL = 300 * time.Second
)

// grant is what one token opens: pull access to a set of repositories.
type grant struct {
	repos   map[string]bool
	expires time.Time
}

// tokens maps opaque bearer tokens to their grants; safe for concurrent use.
type tokens struct {
	mu        sync.Mutex
	grants    map[string]grant
	lastSweep time.Time
}

func newTokens() *tokens { return &tokens{grants: map[string]grant{}} }

// issue returns a new token that opens repos for TokenTTL.
func (t *tokens) issue(repos map[string]bool, now time.Time) string {
	tok := rand.Text()
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.lastSweep) > time.Second { // forget expired tokens now and then
		for k, g := range t.grants {
			if now.After(g.expires) {
				delete(t.grants, k)
			}
		}
		t.lastSweep = now
	}
	t.grants[tok] = grant{repos: repos, expires: now.Add(TokenTTL)}
	return tok
}

// allows reports whether the request's bearer token is valid and opens repo;
// repo "" (the /v2/ ping) needs only a valid token.
func (t *tokens) allows(r *http.Request, repo string, now time.Time) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	t.mu.Lock()
	g, ok := t.grants[strings.TrimSpace(tok)]
	t.mu.Unlock()
	return ok && now.Before(g.expires) && (repo == "" || g.repos[repo])
}

// challenge answers 401 with a Docker Hub-style WWW-Authenticate header.
func (u *Upstream) challenge(w http.ResponseWriter, repo string) {
	u.counts.add(func(c *Counts) *int { return &c.Unauthorized })
	h := `Bearer realm="` + u.URL() + `/token",service="` + Service + `"`
	if repo != "" {
		h += `,scope="repository:` + repo + `:pull"`
	}
	w.Header().Set("WWW-Authenticate", h)
	writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
}

// serveToken is GET /token?service=...&scope=repository:NAME:pull.
func (u *Upstream) serveToken(w http.ResponseWriter, r *http.Request) {
	u.counts.add(func(c *Counts) *int { return &c.TokenRequests })
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "use GET")
		return
	}
	if !u.credentialsOK(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+Service+`"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"details": "incorrect username or password"})
		return
	}
	q := r.URL.Query()
	if s := q.Get("service"); s != "" && s != Service {
		writeJSON(w, http.StatusBadRequest, map[string]string{"details": "unknown service " + s})
		return
	}
	repos := map[string]bool{}
	for _, scope := range q["scope"] {
		// Docker Hub grants pull whatever was asked for; a scope is
		// "repository:NAME:ACTIONS" and NAME never holds a colon.
		parts := strings.Split(scope, ":")
		if len(parts) == 3 && parts[0] == "repository" && validName(parts[1]) {
			repos[parts[1]] = true
		}
	}
	now := time.Now().UTC()
	tok := u.tokens.issue(repos, now)
	writeJSON(w, http.StatusOK, map[string]any{
		"token":        tok,
		"access_token": tok,
		"expires_in":   int(TokenTTL / time.Second),
		"issued_at":    now.Format(time.RFC3339),
	})
}

// credentialsOK checks HTTP Basic credentials when the upstream has a user.
func (u *Upstream) credentialsOK(r *http.Request) bool {
	if u.opts.Username == "" {
		return true
	}
	user, pass, ok := r.BasicAuth()
	return ok &&
		subtle.ConstantTimeCompare([]byte(user), []byte(u.opts.Username)) == 1 &&
		subtle.ConstantTimeCompare([]byte(pass), []byte(u.opts.Password)) == 1
}
