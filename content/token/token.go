// Package token issues and verifies the registry's bearer tokens: JWTs signed with ES256 in
// the claim format of Pulp's token server (Docker's token authentication specification):
// iss, aud (the service), sub (the user, empty for anonymous), access (the granted scopes),
// iat, nbf, exp and jti. The signing key is one ECDSA P-256 key, so every content process
// holding it verifies the tokens any of them issued.
package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Algorithm is the only JWT signature algorithm issued and accepted: ECDSA P-256 with
// SHA-256, the algorithm of Pulp's documented token set-up.
const Algorithm = "ES256"

// Leeway is the clock difference between content processes that verification tolerates on
// exp and nbf.
const Leeway = 10 * time.Second

// Key signs and verifies tokens.
type Key struct {
	priv *ecdsa.PrivateKey
	kid  string
}

// GenerateKey returns a new P-256 private key in PEM (PKCS #8), the form ParseKey reads.
func GenerateKey() ([]byte, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate token signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode token signing key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKey reads a P-256 private key in PEM: PKCS #8 ("PRIVATE KEY") or SEC 1 ("EC PRIVATE
// KEY", what `openssl ecparam -genkey -name prime256v1` writes). Other keys are refused,
// since tokens are signed with ES256 only.
func ParseKey(pemBytes []byte) (*Key, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("token signing key: no PEM block")
	}
	var priv any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		priv, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		priv, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("token signing key: PEM block %q, want an EC P-256 private key (PRIVATE KEY or EC PRIVATE KEY)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("token signing key: %w", err)
	}
	ec, ok := priv.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("token signing key: a %T, want an EC P-256 private key (tokens are signed with %s)", priv, Algorithm)
	}
	kid, err := libtrustKeyID(&ec.PublicKey)
	if err != nil {
		return nil, err
	}
	return &Key{priv: ec, kid: kid}, nil
}

// KeyID is the kid header of the tokens k signs: libtrust's fingerprint of the public key,
// as Pulp and Distribution write it.
func (k *Key) KeyID() string { return k.kid }

// libtrustKeyID returns the first 30 hex digits of the SHA-256 of the key's DER
// SubjectPublicKeyInfo, base32-encoded and cut into groups of four joined by ":".
func libtrustKeyID(pub *ecdsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("token signing key: public key: %w", err)
	}
	sum := sha256.Sum256(der)
	enc := base32.StdEncoding.EncodeToString([]byte(hex.EncodeToString(sum[:])[:30]))
	var b strings.Builder
	for i := 0; i < len(enc); i += 4 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(enc[i:min(i+4, len(enc))])
	}
	return b.String(), nil
}

// Access is one granted scope: a resource type ("repository", "registry"), its name and the
// actions granted on it (possibly none).
type Access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// Allows reports whether the access list grants action on the resource typ/name.
func Allows(access []Access, typ, name, action string) bool {
	for _, a := range access {
		if a.Type == typ && a.Name == name {
			for _, act := range a.Actions {
				if act == action {
					return true
				}
			}
		}
	}
	return false
}

// Claims are the claims of a registry token, as Pulp's token server writes them (aud is
// one string, not a list).
type Claims struct {
	Issuer    string           `json:"iss"`
	Audience  string           `json:"aud"`
	Subject   string           `json:"sub"`
	Access    []Access         `json:"access"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	Expires   *jwt.NumericDate `json:"exp"`
	ID        string           `json:"jti"`
}

var _ jwt.Claims = (*Claims)(nil)

// GetExpirationTime implements jwt.Claims.
func (c *Claims) GetExpirationTime() (*jwt.NumericDate, error) { return c.Expires, nil }

// GetIssuedAt implements jwt.Claims.
func (c *Claims) GetIssuedAt() (*jwt.NumericDate, error) { return c.IssuedAt, nil }

// GetNotBefore implements jwt.Claims.
func (c *Claims) GetNotBefore() (*jwt.NumericDate, error) { return c.NotBefore, nil }

// GetIssuer implements jwt.Claims.
func (c *Claims) GetIssuer() (string, error) { return c.Issuer, nil }

// GetSubject implements jwt.Claims.
func (c *Claims) GetSubject() (string, error) { return c.Subject, nil }

// GetAudience implements jwt.Claims.
func (c *Claims) GetAudience() (jwt.ClaimStrings, error) { return jwt.ClaimStrings{c.Audience}, nil }

// Issue signs a token for subject (empty: anonymous) valid at service (the aud) from now
// for ttl, granting access; iss is the token server's URL. The access list is never null.
func (k *Key) Issue(now time.Time, ttl time.Duration, iss, service, subject string, access []Access) (string, error) {
	if access == nil {
		access = []Access{}
	}
	for i := range access {
		if access[i].Actions == nil {
			access[i].Actions = []string{}
		}
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("token id: %w", err)
	}
	jti[6] = jti[6]&0x0f | 0x40 // a random UUID (version 4, RFC 4122 variant), as Pulp's
	jti[8] = jti[8]&0x3f | 0x80
	now = now.Truncate(time.Second)
	c := &Claims{Issuer: iss, Audience: service, Subject: subject, Access: access,
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expires: jwt.NewNumericDate(now.Add(ttl)),
		ID: fmt.Sprintf("%x-%x-%x-%x-%x", jti[0:4], jti[4:6], jti[6:8], jti[8:10], jti[10:])}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	t.Header["kid"] = k.kid
	s, err := t.SignedString(k.priv)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// ErrInvalid is wrapped by every verification failure.
var ErrInvalid = errors.New("invalid token")

// Verify checks a token at now: signed by k with ES256 (no other algorithm, no other key),
// issued by iss for service, not expired, not before its nbf, and with exp and iat set. It
// returns the claims; failures wrap ErrInvalid.
func (k *Key) Verify(now time.Time, s, iss, service string) (*Claims, error) {
	c := &Claims{}
	_, err := jwt.ParseWithClaims(s, c, func(t *jwt.Token) (any, error) {
		if t.Method != jwt.SigningMethodES256 {
			return nil, fmt.Errorf("signed with %v, want %s", t.Header["alg"], Algorithm)
		}
		return &k.priv.PublicKey, nil
	}, jwt.WithValidMethods([]string{Algorithm}), jwt.WithIssuer(iss), jwt.WithAudience(service),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(func() time.Time { return now }), jwt.WithStrictDecoding())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return c, nil
}
