package registry

import (
	"errors"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/content/token"
)

// TestVerifiedTokensAnswerAsVerify checks that remembering verified tokens changes no answer:
// a remembered token is refused once it expires, a token is remembered only for the issuer
// and service it was verified for, and a token that fails is never remembered.
func TestVerifiedTokensAnswerAsVerify(t *testing.T) {
	pemKey, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := token.ParseKey(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	raw, err := key.Issue(now, time.Minute, "http://reg/token/", "reg", "admin", nil)
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifiedTokens()
	for i := 0; i < 2; i++ {
		if c, err := v.verify(key, now, raw, "http://reg/token/", "reg"); err != nil || c.Subject != "admin" {
			t.Fatalf("verify %d: %v, %v", i, c, err)
		}
	}
	if v.cache.Len() != 1 {
		t.Errorf("%d tokens remembered, want 1", v.cache.Len())
	}
	if _, err := v.verify(key, now, raw, "http://reg/token/", "other"); !errors.Is(err, token.ErrInvalid) {
		t.Errorf("a remembered token for another service: %v, want ErrInvalid", err)
	}
	if _, err := v.verify(key, now.Add(time.Minute+token.Leeway), raw, "http://reg/token/", "reg"); !errors.Is(err, token.ErrInvalid) {
		t.Errorf("a remembered token past its expiry: %v, want ErrInvalid", err)
	}
	if _, err := v.verify(key, now, raw+"x", "http://reg/token/", "reg"); !errors.Is(err, token.ErrInvalid) {
		t.Errorf("a tampered token: %v, want ErrInvalid", err)
	}
	if v.cache.Len() != 1 {
		t.Errorf("%d tokens remembered after failures, want 1", v.cache.Len())
	}
}
