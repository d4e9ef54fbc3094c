package registry

import (
	"time"

	"github.com/pulpgo/pulpgo/content/lru"
	"github.com/pulpgo/pulpgo/content/token"
)

// verifiedTokens remembers the claims of tokens whose signature was verified, so that a client
// reusing its token (every request of a pull) costs one ES256 verification, not one per
// request: verification is about 70 µs of CPU, more than the rest of a warm manifest GET. An
// entry is keyed by the token's exact text with the issuer and service it was verified for,
// and its time bounds are checked again at every use, so a hit answers exactly as Verify would.
type verifiedTokens struct {
	cache *lru.Cache[tokenKey, *token.Claims]
}

type tokenKey struct{ raw, iss, service string }

// maxVerifiedTokens bounds the tokens remembered; maxTokenBytes refuses to remember longer
// tokens (ours are a few hundred bytes), so the cache holds at most a few MiB.
const (
	maxVerifiedTokens = 4096
	maxTokenBytes     = 4096
)

func newVerifiedTokens() *verifiedTokens {
	return &verifiedTokens{cache: lru.New(lru.Options[tokenKey, *token.Claims]{MaxEntries: maxVerifiedTokens, TTL: time.Minute})}
}

// verify returns the claims of raw, from memory when it was verified before for the same
// issuer and service and is still within its validity, otherwise through key.Verify.
func (v *verifiedTokens) verify(key *token.Key, now time.Time, raw, iss, service string) (*token.Claims, error) {
	k := tokenKey{raw: raw, iss: iss, service: service}
	if c, ok := v.cache.Get(k); ok && valid(c, now) {
		return c, nil
	}
	c, err := key.Verify(now, raw, iss, service)
	if err != nil {
		return nil, err
	}
	if len(raw) <= maxTokenBytes {
		v.cache.Add(k, c)
	}
	return c, nil
}

// valid reports whether now lies within c's validity, with Verify's leeway.
func valid(c *token.Claims, now time.Time) bool {
	if c.Expires == nil || !now.Before(c.Expires.Add(token.Leeway)) {
		return false
	}
	return c.NotBefore == nil || !now.Before(c.NotBefore.Add(-token.Leeway))
}
