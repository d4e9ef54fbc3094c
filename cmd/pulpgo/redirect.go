package main

import (
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// hstsHandler serves h with a Strict-Transport-Security header of maxAge on every answer.
func hstsHandler(h http.Handler, maxAge time.Duration) http.Handler {
	value := "max-age=" + strconv.FormatInt(int64(maxAge/time.Second), 10)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", value)
		h.ServeHTTP(w, r)
	})
}

// plainHTTPHandler answers the plain-HTTP listener's requests that are not ACME challenges:
// with redirect, a 308 to the same path and query on HTTPS (origin when it is an https URL,
// otherwise the request's host on tlsPort); without, 404. When names is not empty, a request
// for another host is sent to the first of names, so a forged Host header cannot make the
// answer point elsewhere.
func plainHTTPHandler(redirect bool, origin string, tlsPort string, names []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !redirect {
			http.Error(w, "this port answers ACME HTTP-01 challenges only: use HTTPS", http.StatusNotFound)
			return
		}
		target := origin
		if !strings.HasPrefix(target, "https://") {
			host := r.Host
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			if len(names) > 0 && !slices.ContainsFunc(names, func(n string) bool { return nameMatches(n, host) }) {
				host = ""
				if i := slices.IndexFunc(names, func(n string) bool { return !strings.HasPrefix(n, "*.") }); i >= 0 {
					host = names[i]
				}
			}
			if host == "" || strings.ContainsAny(host, "/\\@?#") {
				http.Error(w, "no usable Host header to redirect to", http.StatusBadRequest)
				return
			}
			if tlsPort != "443" {
				host = net.JoinHostPort(host, tlsPort)
			} else if strings.Contains(host, ":") {
				host = "[" + host + "]"
			}
			target = "https://" + host
		}
		// The path and query only, rebuilt: RequestURI keeps an opaque request target
		// ("GET x:@evil.example/p" gives "@evil.example/p"), which would move the host.
		path := r.URL.EscapedPath()
		if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") {
			http.Error(w, "the request target is not an absolute path", http.StatusBadRequest)
			return
		}
		if r.URL.RawQuery != "" {
			path += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target+path, http.StatusPermanentRedirect)
	})
}

// nameMatches reports whether host is the certificate name n, or matches it when n is a
// wildcard (*.example.com covers one label below example.com).
func nameMatches(n, host string) bool {
	if rest, ok := strings.CutPrefix(n, "*."); ok {
		label, parent, found := strings.Cut(host, ".")
		return found && label != "" && strings.EqualFold(parent, rest)
	}
	return strings.EqualFold(n, host)
}
