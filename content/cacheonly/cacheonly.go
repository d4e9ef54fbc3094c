// Package cacheonly carries, in a request's context, that the caller may not make the
// pull-through cache ask its upstream anything (--fills-require-auth and an anonymous
// caller): the registry marks the context, the cache reads it. It is a leaf both import, so
// that neither reaches into the other.
package cacheonly

import (
	"context"
	"net/http"

	"github.com/pulpgo/pulpgo/content/oci"
)

type key struct{}

// With returns ctx marked cache-only: what the cache holds is served, nothing is asked of or
// fetched from an upstream, and no image objects are created.
func With(ctx context.Context) context.Context { return context.WithValue(ctx, key{}, true) }

// Is reports whether ctx was marked by With.
func Is(ctx context.Context) bool {
	v, _ := ctx.Value(key{}).(bool)
	return v
}

// ErrAuthRequired answers a cache-only pull of what the cache does not hold: 401, so that the
// registry challenges the client and a client with credentials logs in and asks again.
var ErrAuthRequired = &oci.Error{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED",
	Message: "Authentication required: this content is not cached and only authenticated users may fill the cache."}
