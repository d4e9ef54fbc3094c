// Package upstream is the HTTP client that the pull-through cache uses to talk to an upstream
// registry (Docker Hub in real life): manifest HEADs and GETs, blob HEADs and streamed GETs, and
// tag lists, with the authentication, redirect and TLS behaviour of a real registry client.
//
// One Client serves one Pulp remote. It owns one http.Transport built from the remote's TLS,
// certificate, proxy and header settings, and one token cache keyed by scope
// (repository:<name>:pull). Authentication follows the registry's WWW-Authenticate challenges:
// Bearer tokens come from the challenge's realm (with the remote's credentials as Basic auth when
// it has any), are cached until shortly before they expire and are then sent pre-emptively;
// concurrent requests for the same scope share one token request. Basic challenges are answered
// with the remote's credentials.
//
// Redirects are followed (at most 10), but the registry's Authorization header and the remote's
// extra headers are only ever sent to the registry's own origin (scheme, host and port): a blob
// redirect to a CDN carries neither. Only a 401 from that origin is answered: one from a
// redirect target elsewhere is a plain denial, its challenge neither answered nor remembered. A
// Bearer realm may be on another host (Docker Hub's is), but not on plain http when the registry
// is https.
//
// Every failure is an *Error. IsNotFound, IsTooManyRequests and IsUnavailable classify them for a
// cache that must decide whether to answer 404 or to serve what it already has. Repository
// names, tags and digests are checked against the distribution grammar before any URL is built,
// so nothing a client sends can traverse paths on the upstream. Passwords and tokens never
// appear in error strings.
//
// Two things are left to the caller on purpose: naming (Docker Hub's "library/" prefix for
// single-segment names is the pull-through layer's business, since it knows the remote) and
// retries (a cache decides whether to retry or to serve what it has; net/http already retries
// idempotent requests that fail on a reused connection).
//
// The package is a leaf: it imports only the standard library.
package upstream
