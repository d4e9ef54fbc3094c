package main

import (
	"net"
	"net/http"
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
// otherwise the request's host on tlsPort); without, 404.
func plainHTTPHandler(redirect bool, origin string, tlsPort string) http.Handler {
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
			if host == "" || strings.ContainsAny(host, "/\\@") {
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
		http.Redirect(w, r, target+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}
