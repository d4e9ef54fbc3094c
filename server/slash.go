package server

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// slashRedirect answers a path that no route has: with a redirect to the same path with a slash
// appended when that one has a route (Django's APPEND_SLASH, as Gin's RedirectTrailingSlash did:
// 301 for GET and HEAD, 307 otherwise), else Pulp's 404. Gin's own redirect also removed a
// trailing slash, so that a method a path lacks (DELETE on a list) was redirected instead of
// answered 405; Pulp's paths all end with a slash, so only appending one is right.
func slashRedirect(r *gin.Engine, notFound gin.HandlerFunc) gin.HandlerFunc {
	var routes [][]string
	for _, rt := range r.Routes() {
		routes = append(routes, strings.Split(rt.Path, "/"))
	}
	has := func(path string) bool {
		segs := strings.Split(path, "/")
	next:
		for _, rt := range routes {
			if len(rt) != len(segs) {
				continue
			}
			for i, s := range rt {
				if s != segs[i] && !(strings.HasPrefix(s, ":") && segs[i] != "") {
					continue next
				}
			}
			return true
		}
		return false
	}
	return func(c *gin.Context) {
		p := c.Request.URL.Path
		if !strings.HasSuffix(p, "/") && has(p+"/") {
			u := *c.Request.URL
			u.Path = p + "/"
			code := http.StatusMovedPermanently
			if m := c.Request.Method; m != http.MethodGet && m != http.MethodHead {
				code = http.StatusTemporaryRedirect
			}
			c.Redirect(code, u.String())
			return
		}
		notFound(c)
	}
}
