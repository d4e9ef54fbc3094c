package remotes

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/upstream"
	"github.com/pulpgo/pulpgo/models"
)

// TestClientsSharedBySettings checks that remotes with the same settings (the images pulled
// through one pull-through remote, an on_demand remote of the same registry) share one
// upstream client, and that other settings get their own.
func TestClientsSharedBySettings(t *testing.T) {
	cs := NewClients(0)
	a := &models.Remote{ID: "a", Name: "cache/a", URL: "http://127.0.0.1:1", TLSValidation: true}
	b := &models.Remote{ID: "b", Name: "cache/b", URL: "http://127.0.0.1:1/", TLSValidation: true}
	other := &models.Remote{ID: "c", Name: "other", URL: "http://127.0.0.1:2", TLSValidation: true}
	ca, err := cs.For(a)
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := cs.For(b)
	co, _ := cs.For(other)
	if ca.Client != cb.Client || ca.Key != cb.Key {
		t.Error("remotes with the same settings got two clients")
	}
	if ca.Client == co.Client || ca.Key == co.Key {
		t.Error("remotes with different settings share a client")
	}
}

// TestErrorMapping checks the registry errors of upstream failures: 404 → the given
// not-found error, 429 → TOOMANYREQUESTS keeping the upstream's Retry-After, an open breaker
// → 503 UNAVAILABLE, no answer → 504.
func TestErrorMapping(t *testing.T) {
	notFound := oci.ErrManifestUnknown.WithDetail("reference", "v1")
	var ra interface{ RetryAfter() time.Duration }
	for _, c := range []struct {
		name  string
		err   error
		want  *oci.Error
		retry time.Duration
	}{
		{"404", &upstream.Error{Op: "get manifest", StatusCode: http.StatusNotFound}, notFound, 0},
		{"429", &upstream.Error{Op: "get manifest", StatusCode: http.StatusTooManyRequests}, oci.ErrUpstreamThrottle, 0},
		{"429 Retry-After", &upstream.Error{Op: "get manifest", StatusCode: http.StatusTooManyRequests, RetryAfter: 42 * time.Second},
			oci.ErrUpstreamThrottle, 42 * time.Second},
		{"breaker open", &upstream.Error{Op: "head manifest", Err: upstream.ErrBreakerOpen}, oci.ErrUpstreamUnavailable, 0},
		{"refused", &upstream.Error{Op: "head manifest", Err: errors.New("connection refused")}, oci.ErrUpstreamTimeout, 0},
	} {
		got := Error(c.err, notFound)
		if !errors.Is(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
		hasRetry := errors.As(got, &ra)
		if hasRetry != (c.retry > 0) || (hasRetry && ra.RetryAfter() != c.retry) {
			t.Errorf("%s: Retry-After %v (%v), want %v", c.name, hasRetry, got, c.retry)
		}
	}
}
