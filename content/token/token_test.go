package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	iss     = "http://127.0.0.1:24817/token/"
	service = "127.0.0.1:24817"
)

func newKey(t *testing.T) *Key {
	t.Helper()
	p, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKey(p)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// segments splits a JWT and decodes its header and claims.
func segments(t *testing.T, s string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts", s, len(parts))
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

// encode returns the unsigned part header.claims of a hand-made token.
func encode(t *testing.T, header, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
}

func TestIssueClaims(t *testing.T) {
	k := newKey(t)
	now := time.Unix(1_800_000_000, 0)
	access := []Access{{Type: "repository", Name: "test", Actions: []string{"pull"}}, {Type: "registry", Name: "catalog"}}
	s, err := k.Issue(now, 5*time.Minute, iss, service, "admin", access)
	if err != nil {
		t.Fatal(err)
	}
	h, c := segments(t, s)
	if h["alg"] != "ES256" || h["typ"] != "JWT" || h["kid"] != k.KeyID() {
		t.Errorf("header %v", h)
	}
	if !regexp.MustCompile(`^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$`).MatchString(k.KeyID()) {
		t.Errorf("kid %q is not in libtrust's form", k.KeyID())
	}
	want := map[string]any{"iss": iss, "aud": service, "sub": "admin", "iat": 1.8e9, "nbf": 1.8e9, "exp": 1.8e9 + 300,
		"access": []any{map[string]any{"type": "repository", "name": "test", "actions": []any{"pull"}},
			map[string]any{"type": "registry", "name": "catalog", "actions": []any{}}}}
	for key, v := range want {
		got, _ := json.Marshal(c[key])
		w, _ := json.Marshal(v)
		if string(got) != string(w) {
			t.Errorf("claim %s = %s, want %s", key, got, w)
		}
	}
	if jti, _ := c["jti"].(string); !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(jti) {
		t.Errorf("jti %q", c["jti"])
	}
	got, err := k.Verify(now.Add(time.Minute), s, iss, service)
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != "admin" || !Allows(got.Access, "repository", "test", "pull") || Allows(got.Access, "repository", "test", "push") ||
		Allows(got.Access, "repository", "other", "pull") || Allows(got.Access, "registry", "catalog", "*") {
		t.Errorf("claims %+v", got)
	}
	// Two tokens never share an id.
	s2, _ := k.Issue(now, time.Minute, iss, service, "", nil)
	if _, c2 := segments(t, s2); c2["jti"] == c["jti"] || c2["sub"] != "" || string(must(json.Marshal(c2["access"]))) != "[]" {
		t.Errorf("second token claims %v", c2)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestVerifyRefuses(t *testing.T) {
	k, other := newKey(t), newKey(t)
	now := time.Unix(1_800_000_000, 0)
	good := must(k.Issue(now, 5*time.Minute, iss, service, "admin", []Access{{Type: "repository", Name: "a", Actions: []string{"pull"}}}))
	_, claims := segments(t, good)
	header, _ := segments(t, good)
	sig := good[strings.LastIndexByte(good, '.'):]

	pubDER := must(x509.MarshalPKIXPublicKey(&k.priv.PublicKey))
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs := func(secret []byte) string {
		tk := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims))
		return must(tk.SignedString(secret))
	}
	with := func(key string, v any) map[string]any {
		c := map[string]any{}
		for k, x := range claims {
			c[k] = x
		}
		if v == nil {
			delete(c, key)
		} else {
			c[key] = v
		}
		return c
	}
	resign := func(c map[string]any) string {
		return must(signClaims(k, c))
	}
	cases := []struct {
		name  string
		token string
		at    time.Time
		iss   string
		aud   string
	}{
		{name: "expired", token: good, at: now.Add(5*time.Minute + Leeway + time.Second)},
		{name: "not yet valid", token: good, at: now.Add(-Leeway - time.Minute)},
		{name: "signed by another key", token: must(other.Issue(now, time.Minute, iss, service, "admin", nil))},
		{name: "alg none", token: encode(t, map[string]any{"alg": "none", "typ": "JWT"}, claims) + "."},
		{name: "alg none with the real signature", token: encode(t, map[string]any{"alg": "none", "typ": "JWT"}, claims) + sig},
		{name: "HS256 keyed with the public key PEM", token: hs(pubPEM)},
		{name: "HS256 keyed with the public key DER", token: hs(pubDER)},
		{name: "ES384 header", token: encode(t, map[string]any{"alg": "ES384", "typ": "JWT", "kid": k.kid}, claims) + sig},
		{name: "wrong audience", token: good, aud: "evil.example:443"},
		{name: "wrong issuer", token: good, iss: "http://evil.example/token/"},
		{name: "audience as a list", token: resign(with("aud", []string{service}))},
		{name: "no expiry", token: resign(with("exp", nil))},
		{name: "issued in the future", token: resign(with("iat", float64(now.Add(time.Hour).Unix())))},
		{name: "tampered access (repository a for b)", token: encode(t, header, with("access",
			[]any{map[string]any{"type": "repository", "name": "b", "actions": []any{"pull"}}})) + sig},
		{name: "tampered subject", token: encode(t, header, with("sub", "root")) + sig},
		{name: "tampered expiry", token: encode(t, header, with("exp", float64(now.Add(time.Hour).Unix()))) + sig},
		{name: "no signature", token: strings.TrimSuffix(good, sig) + "."},
		{name: "garbage", token: "not.a.token"},
		{name: "empty", token: ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			at, i, a := c.at, c.iss, c.aud
			if at.IsZero() {
				at = now.Add(time.Second)
			}
			if i == "" {
				i = iss
			}
			if a == "" {
				a = service
			}
			if _, err := k.Verify(at, c.token, i, a); !errors.Is(err, ErrInvalid) {
				t.Errorf("Verify = %v, want ErrInvalid", err)
			}
		})
	}
	// The good token itself passes, so the cases above fail for their own reason.
	if _, err := k.Verify(now.Add(time.Second), good, iss, service); err != nil {
		t.Errorf("good token: %v", err)
	}
	if _, err := k.Verify(now.Add(time.Second), resign(claims), iss, service); err != nil {
		t.Errorf("good claims re-signed: %v", err)
	}
}

func TestParseKey(t *testing.T) {
	ec := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	sec1 := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: must(x509.MarshalECPrivateKey(ec))})
	k, err := ParseKey(sec1)
	if err != nil {
		t.Fatalf("SEC 1 key: %v", err)
	}
	k2, err := ParseKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(ec))}))
	if err != nil || k2.KeyID() != k.KeyID() {
		t.Fatalf("PKCS 8 form of the same key: %v, kid %q vs %q", err, k2.KeyID(), k.KeyID())
	}
	p384 := must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))
	rsaKey := must(rsa.GenerateKey(rand.Reader, 2048))
	for name, b := range map[string][]byte{
		"empty":      nil,
		"not PEM":    []byte("hello"),
		"public key": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&ec.PublicKey))}),
		"P-384":      pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: must(x509.MarshalECPrivateKey(p384))}),
		"RSA":        pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(rsaKey))}),
		"corrupt":    pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte("junk")}),
	} {
		if _, err := ParseKey(b); err == nil {
			t.Errorf("%s: ParseKey accepted it", name)
		}
	}
}

// signClaims signs arbitrary claims with k, for tests of what Verify refuses.
func signClaims(k *Key, claims map[string]any) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims(claims))
	t.Header["kid"] = k.kid
	return t.SignedString(k.priv)
}
