package acmecert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/caddyserver/certmagic"
)

// The challenge types, as the settings name them.
const (
	HTTP01    = "http-01"
	TLSALPN01 = "tls-alpn-01"
	DNS01     = "dns-01"
)

// LetsEncrypt is the directory URL of Let's Encrypt's production CA, the default CA.
const LetsEncrypt = certmagic.LetsEncryptProductionCA

// Config says which certificate to get from which CA, and how challenges are answered.
type Config struct {
	// Domains are the names the certificate covers.
	Domains []string
	// Email is the ACME account's contact; may be empty.
	Email string
	// CA is the ACME directory URL.
	CA string
	// CARoots, when set, are the only roots trusted for the CA's own HTTPS (a private CA).
	CARoots *x509.CertPool
	// StorageDir holds the account, the certificates and their keys, and the challenge data
	// a process answering for another one reads; unless Objects is set.
	StorageDir string
	// Objects, when set, is the storage instead of StorageDir (shared through a database).
	Objects Objects
	// Challenges are the challenge types tried: only those that can work with the listeners.
	Challenges []string
	// HTTPPort and TLSPort are where the CA reaches the plain-HTTP and TLS listeners
	// (HTTP-01 and TLS-ALPN-01); ListenHost is their host.
	HTTPPort, TLSPort int
	ListenHost        string
	// DNS signs the DNS-01 updates; needed with DNS01.
	DNS *RFC2136
	// RenewCheckInterval is how often certificates are checked for renewal (certmagic's
	// default when 0).
	RenewCheckInterval time.Duration
	Logger             *slog.Logger
}

// Manager serves and renews the certificate of one Config.
type Manager struct {
	domains []string
	cache   *certmagic.Cache
	magic   *certmagic.Config
	issuer  *certmagic.ACMEIssuer
	log     *slog.Logger
}

// New checks c and returns its manager; Start gets the certificate.
func New(c Config) (*Manager, error) {
	if len(c.Domains) == 0 {
		return nil, errors.New("ACME: no domain to get a certificate for")
	}
	if len(c.Challenges) == 0 {
		return nil, errors.New("ACME: no challenge type can work with these settings")
	}
	for _, ch := range c.Challenges {
		if ch != HTTP01 && ch != TLSALPN01 && ch != DNS01 {
			return nil, fmt.Errorf("ACME: unknown challenge type %q (want %s, %s or %s)", ch, HTTP01, TLSALPN01, DNS01)
		}
	}
	if slices.Contains(c.Challenges, DNS01) {
		if c.DNS == nil {
			return nil, errors.New("ACME: dns-01 needs the RFC 2136 settings")
		}
		if err := c.DNS.Check(); err != nil {
			return nil, fmt.Errorf("ACME dns-01: %w", err)
		}
	}
	var storage certmagic.Storage = objectStorage{c.Objects}
	if c.Objects == nil {
		if err := os.MkdirAll(c.StorageDir, 0o700); err != nil {
			return nil, fmt.Errorf("ACME storage directory %s: %w", c.StorageDir, err)
		}
		storage = &certmagic.FileStorage{Path: c.StorageDir}
	}
	m := &Manager{domains: c.Domains, log: c.Logger}
	zl := newZapLogger(c.Logger)
	var magic *certmagic.Config
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		RenewCheckInterval: c.RenewCheckInterval, Logger: zl})
	magic = certmagic.New(m.cache, certmagic.Config{Storage: storage,
		OnEvent: m.onEvent, Logger: zl})
	tmpl := certmagic.ACMEIssuer{CA: c.CA, TestCA: c.CA, Email: c.Email, Agreed: true, TrustedRoots: c.CARoots,
		DisableHTTPChallenge:    !slices.Contains(c.Challenges, HTTP01),
		DisableTLSALPNChallenge: !slices.Contains(c.Challenges, TLSALPN01),
		ListenHost:              c.ListenHost, AltHTTPPort: c.HTTPPort, AltTLSALPNPort: c.TLSPort, Logger: zl}
	if slices.Contains(c.Challenges, DNS01) {
		// The server taking the updates answers for the zone: it finds the zone and sees
		// the record first.
		tmpl.DNS01Solver = &certmagic.DNS01Solver{DNSManager: certmagic.DNSManager{DNSProvider: c.DNS,
			Resolvers: []string{c.DNS.Server}, Logger: zl}}
	}
	m.issuer = certmagic.NewACMEIssuer(magic, tmpl)
	magic.Issuers = []certmagic.Issuer{m.issuer}
	m.magic = magic
	return m, nil
}

// Start loads the certificate from storage or gets one in the background (a listener must
// already answer the challenges), and keeps it renewed until Stop.
func (m *Manager) Start(ctx context.Context) error {
	if err := m.magic.ManageAsync(ctx, m.domains); err != nil {
		return fmt.Errorf("ACME: manage the certificate of %v: %w", m.domains, err)
	}
	return nil
}

// Stop ends the background renewal.
func (m *Manager) Stop() { m.cache.Stop() }

// TLSConfig is the server TLS configuration serving the managed certificate and answering
// TLS-ALPN-01 challenges.
func (m *Manager) TLSConfig() *tls.Config {
	t := m.magic.TLSConfig()
	t.MinVersion = tls.VersionTLS12
	t.NextProtos = append(t.NextProtos, "h2", "http/1.1")
	return t
}

// HTTPChallengeHandler answers HTTP-01 challenges and hands every other request to next.
func (m *Manager) HTTPChallengeHandler(next http.Handler) http.Handler {
	return m.issuer.HTTPChallengeHandler(next)
}

// onEvent logs certificates obtained and renewed (with their expiry) and failures.
func (m *Manager) onEvent(ctx context.Context, event string, data map[string]any) error {
	switch event {
	case "cert_obtained":
		attrs := []any{"domain", data["identifier"], "renewal", data["renewal"]}
		if p, ok := data["certificate_path"].(string); ok {
			if notAfter, err := m.expiry(ctx, p); err == nil {
				attrs = append(attrs, "expires", notAfter.UTC().Format(time.RFC3339))
			}
		}
		if data["renewal"] == true {
			m.log.Info("ACME certificate renewed", attrs...)
		} else {
			m.log.Info("ACME certificate obtained", attrs...)
		}
	case "cert_failed":
		m.log.Error("ACME certificate could not be obtained", "domain", data["identifier"], "renewal", data["renewal"], "err", data["error"])
	}
	return nil
}

// expiry reads the end of validity of the certificate stored at key.
func (m *Manager) expiry(ctx context.Context, key string) (time.Time, error) {
	b, err := m.magic.Storage.Load(ctx, key)
	if err != nil {
		return time.Time{}, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return time.Time{}, fmt.Errorf("no PEM certificate in %s", key)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return time.Time{}, err
	}
	return cert.NotAfter, nil
}
