package main

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pulpgo/pulpgo/cmd/pulpgo/acmecert"
	"github.com/pulpgo/pulpgo/models"
)

// acmeSettings are the settings of certificates from an ACME CA.
type acmeSettings struct {
	// Domains are the names of the certificate; none: ACME is off.
	Domains []string
	Email   string
	// CA is the ACME directory URL; CARoot a PEM file of the roots its HTTPS is checked
	// against instead of the system's (a private CA such as Pebble).
	CA, CARoot string
	// Challenges are the challenge types tried; none given: every one that can work.
	Challenges []string
	// RFC2136 are the DNS-01 settings; Secret is read from SecretFile or the environment.
	RFC2136    acmecert.RFC2136
	SecretFile string
	// RenewCheckInterval is how often the certificate is checked for renewal (a test knob,
	// PULPGO_ACME_RENEW_CHECK_INTERVAL only; 0: certmagic's 10 minutes).
	RenewCheckInterval time.Duration
}

// secretEnv is the environment variable that may hold the TSIG secret itself.
const secretEnv = "PULPGO_ACME_RFC2136_SECRET"

// acmeFlags defines the ACME settings on fs with the str and dur helpers of parseConfig.
func acmeFlags(fs *flag.FlagSet, a *acmeSettings, str func(*string, string, string, string, string),
	dur func(*time.Duration, string, string, time.Duration, string)) {
	list := func(p *[]string, name, env, usage string) {
		if v, ok := os.LookupEnv(env); ok {
			*p = models.SplitList(v)
		}
		fs.Func(name, usage+" (env "+env+")", func(v string) error { *p = models.SplitList(v); return nil })
	}
	list(&a.Domains, "acme-domains", "PULPGO_ACME_DOMAINS", "comma-separated names to get a certificate for from the ACME CA; serves HTTPS with it, renewed in the background (excludes --tls-cert)")
	str(&a.Email, "acme-email", "PULPGO_ACME_EMAIL", "", "contact e-mail of the ACME account")
	str(&a.CA, "acme-ca", "PULPGO_ACME_CA", acmecert.LetsEncrypt, "ACME directory URL of the CA")
	str(&a.CARoot, "acme-ca-root", "PULPGO_ACME_CA_ROOT", "", "PEM file of the root certificates the ACME CA's own HTTPS is checked against, instead of the system's (a private CA)")
	list(&a.Challenges, "acme-challenges", "PULPGO_ACME_CHALLENGES", "comma-separated challenge types to use: http-01 (needs --http-listen), tls-alpn-01 (on --listen), dns-01 (needs the --acme-rfc2136-* settings); default: dns-01 when an RFC 2136 server is set, otherwise tls-alpn-01 and, with --http-listen, http-01")
	str(&a.RFC2136.Server, "acme-rfc2136-server", "PULPGO_ACME_RFC2136_SERVER", "", "host:port of the DNS server taking RFC 2136 updates for DNS-01 (the zone's primary)")
	str(&a.RFC2136.KeyName, "acme-rfc2136-key-name", "PULPGO_ACME_RFC2136_KEY_NAME", "", "name of the TSIG key signing the DNS updates")
	str(&a.RFC2136.KeyAlg, "acme-rfc2136-key-alg", "PULPGO_ACME_RFC2136_KEY_ALG", "hmac-sha256", "TSIG algorithm: hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384 or hmac-sha512")
	str(&a.SecretFile, "acme-rfc2136-secret-file", "PULPGO_ACME_RFC2136_SECRET_FILE", "", "file holding the TSIG secret (base64); or the secret itself in "+secretEnv)
	a.RFC2136.Secret = os.Getenv(secretEnv)
	if v, ok := os.LookupEnv("PULPGO_ACME_RENEW_CHECK_INTERVAL"); ok {
		a.RenewCheckInterval, _ = time.ParseDuration(v)
	}
}

// checkTLS refuses TLS settings that contradict each other or cannot work, reads the TSIG
// secret file and picks the ACME challenge types.
func (c *config) checkTLS() error {
	a := &c.ACME
	tlsOn := c.TLSCert != "" || len(a.Domains) > 0
	switch {
	case len(a.Domains) > 0 && c.TLSCert != "":
		return errors.New("--acme-domains and --tls-cert exclude each other: ACME gets the certificate, --tls-cert serves your own; give one")
	case c.HTTPListen != "" && !tlsOn:
		return errors.New("--http-listen answers ACME challenges and redirects to HTTPS: it needs --acme-domains or --tls-cert")
	case c.HTTPSRedirect && c.HTTPListen == "":
		return errors.New("--https-redirect needs --http-listen, the plain-HTTP listener it redirects from")
	case c.HSTS < 0:
		return fmt.Errorf("--hsts must be 0 (off) or a positive max-age, not %s", c.HSTS)
	case c.HSTS > 0 && !tlsOn:
		return errors.New("--hsts needs HTTPS: --acme-domains or --tls-cert")
	}
	if v := os.Getenv("PULPGO_ACME_RENEW_CHECK_INTERVAL"); v != "" && a.RenewCheckInterval <= 0 {
		return fmt.Errorf("PULPGO_ACME_RENEW_CHECK_INTERVAL=%q is not a positive duration", v)
	}
	if len(a.Domains) == 0 {
		if a.RFC2136.Server != "" || len(a.Challenges) > 0 || a.Email != "" || a.CARoot != "" {
			return errors.New("ACME settings are given but --acme-domains is not: name the domains of the certificate")
		}
		return nil
	}
	if a.SecretFile != "" {
		b, err := os.ReadFile(a.SecretFile)
		if err != nil {
			return fmt.Errorf("--acme-rfc2136-secret-file: %w", err)
		}
		a.RFC2136.Secret = strings.TrimSpace(string(b))
	}
	if len(a.Challenges) == 0 {
		switch {
		case a.RFC2136.Server != "":
			a.Challenges = []string{acmecert.DNS01}
		case c.HTTPListen != "":
			a.Challenges = []string{acmecert.HTTP01, acmecert.TLSALPN01}
		default:
			a.Challenges = []string{acmecert.TLSALPN01}
		}
	}
	for _, ch := range a.Challenges {
		switch ch {
		case acmecert.HTTP01:
			if c.HTTPListen == "" {
				return errors.New("--acme-challenges http-01 needs --http-listen: the CA asks for the challenge over plain HTTP")
			}
		case acmecert.TLSALPN01:
		case acmecert.DNS01:
			if err := a.RFC2136.Check(); err != nil {
				return fmt.Errorf("--acme-challenges dns-01 needs the --acme-rfc2136-* settings: %w", err)
			}
		default:
			return fmt.Errorf("--acme-challenges: unknown challenge type %q (want http-01, tls-alpn-01 or dns-01)", ch)
		}
	}
	if slices.Contains(a.Challenges, acmecert.DNS01) && len(a.Challenges) > 1 {
		return errors.New("--acme-challenges: dns-01 is used alone (the other types are not tried when it is set)")
	}
	return nil
}

// newACME returns the certificate manager of cfg's ACME settings, for a TLS listener at
// tlsAddr and a plain-HTTP one at httpAddr (nil: none); certificates are kept in objects
// (the database's) or, when it is nil, in <data-dir>/acme.
func newACME(cfg *config, objects acmecert.Objects, tlsAddr, httpAddr net.Addr, log *slog.Logger) (*acmecert.Manager, error) {
	a := cfg.ACME
	c := acmecert.Config{Domains: a.Domains, Email: a.Email, CA: a.CA, StorageDir: filepath.Join(cfg.DataDir, "acme"),
		Objects: objects, Challenges: a.Challenges, RenewCheckInterval: a.RenewCheckInterval, Logger: log}
	if slices.Contains(a.Challenges, acmecert.DNS01) {
		dns := a.RFC2136
		c.DNS = &dns
	}
	host, port, err := net.SplitHostPort(tlsAddr.String())
	if err != nil {
		return nil, err
	}
	c.ListenHost = host
	c.TLSPort, _ = strconv.Atoi(port)
	if httpAddr != nil {
		if _, port, err := net.SplitHostPort(httpAddr.String()); err == nil {
			c.HTTPPort, _ = strconv.Atoi(port)
		}
	}
	if a.CARoot != "" {
		b, err := os.ReadFile(a.CARoot)
		if err != nil {
			return nil, fmt.Errorf("--acme-ca-root: %w", err)
		}
		c.CARoots = x509.NewCertPool()
		if !c.CARoots.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--acme-ca-root %s holds no PEM certificate", a.CARoot)
		}
	}
	return acmecert.New(c)
}
