package acme

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// site is one server getting its certificate for domain from pebble.
type site struct {
	domain            string
	tlsPort, httpPort int
	dns               *DNS
	pebble            *Pebble
	server            *harness.Server
}

// newSite starts knotd and a Pebble that validates HTTP-01 on httpPort and TLS-ALPN-01 on
// tlsPort only when they are the challenges named in reach; the others point at closed ports,
// so only those can succeed.
func newSite(t *testing.T, name string, validity time.Duration, reach ...string) *site {
	s := &site{domain: name + "." + Zone, tlsPort: port(t), httpPort: port(t), dns: StartKnot(t)}
	opts := PebbleOptions{HTTPPort: port(t), TLSPort: port(t), DNS: s.dns.Addr, Validity: validity}
	for _, r := range reach {
		switch r {
		case "http-01":
			opts.HTTPPort = s.httpPort
		case "tls-alpn-01":
			opts.TLSPort = s.tlsPort
		}
	}
	s.pebble = StartPebble(t, opts)
	return s
}

// start runs bin/pulpgo serve with the ACME flags of s and args, and waits until it serves
// HTTPS with a certificate Pebble issued.
func (s *site) start(t *testing.T, args []string, env ...string) {
	s.server = s.run(t, s.tlsPort, testenv.Embedded(), args, env)
}

// run runs bin/pulpgo serve on the port listen with engine, the ACME flags of s and args.
func (s *site) run(t *testing.T, listen int, engine testenv.Engine, args, env []string) *harness.Server {
	base := []string{"--acme-domains", s.domain, "--acme-email", "ops@" + Zone, "--acme-ca", s.pebble.Directory,
		"--acme-ca-root", s.pebble.CARootFile}
	return harness.Start(t, harness.Options{Listen: fmt.Sprintf("127.0.0.1:%d", listen), Engine: engine,
		Args: append(base, args...), Env: env, TLS: &tls.Config{RootCAs: s.pebble.Roots, ServerName: s.domain}})
}

// client trusts Pebble's root only, dials every name to 127.0.0.1, and follows no redirect.
func (s *site) client() *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.pebble.Roots}, DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, port, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, err
				}
				return dialer.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
			}}}
}

// url is the HTTPS URL of path on s by its domain name.
func (s *site) url(path string) string { return s.urlOn(s.tlsPort, path) }

// urlOn is the HTTPS URL of path on port by the domain name of s.
func (s *site) urlOn(port int, path string) string {
	return fmt.Sprintf("https://%s:%d%s", s.domain, port, path)
}

// checkServed checks that the registry and the API answer over HTTPS by the domain name with
// a certificate for it that chains to Pebble's root, and returns the response of /v2/.
func (s *site) checkServed(t *testing.T) *http.Response {
	t.Helper()
	return s.checkServedOn(t, s.tlsPort)
}

// checkServedOn is checkServed for the server listening on port.
func (s *site) checkServedOn(t *testing.T, port int) *http.Response {
	t.Helper()
	var v2 *http.Response
	for path, want := range map[string]int{"/v2/": http.StatusUnauthorized, harness.StatusPath: http.StatusOK} {
		resp, err := s.client().Get(s.urlOn(port, path))
		if err != nil {
			t.Fatalf("GET %s: %v", s.urlOn(port, path), err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %s, want %d", path, resp.Status, want)
		}
		if leaf := resp.TLS.PeerCertificates[0]; leaf.VerifyHostname(s.domain) != nil {
			t.Errorf("served certificate is not for %s: %v", s.domain, leaf.DNSNames)
		}
		if path == "/v2/" {
			v2 = resp
		}
	}
	return v2
}

// getPlain GETs path on the plain-HTTP listener by the domain name.
func (s *site) getPlain(t *testing.T, path string) *http.Response {
	t.Helper()
	resp, err := s.client().Get(fmt.Sprintf("http://%s:%d%s", s.domain, s.httpPort, path))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// logHas reports whether the server's log has a line with every one of parts.
func (s *site) logHas(parts ...string) bool {
	b, _ := os.ReadFile(s.server.LogFile)
	for _, line := range strings.Split(string(b), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// TestHTTP01: with only HTTP-01 reachable (Pebble's TLS-ALPN-01 port is closed and the
// server allows http-01 alone), serve gets its certificate through its --http-listen
// listener; the plain listener answers 404 to anything else (no redirect by default), and
// HTTPS answers carry no HSTS header by default. After a restart the stored certificate is
// served.
func TestHTTP01(t *testing.T) {
	t.Parallel()
	s := newSite(t, "http", 0, "http-01")
	s.start(t, []string{"--http-listen", fmt.Sprintf("127.0.0.1:%d", s.httpPort), "--acme-challenges", "http-01"})
	resp := s.checkServed(t)
	if h := resp.Header.Get("Strict-Transport-Security"); h != "" {
		t.Errorf("HSTS header %q by default, want none", h)
	}
	plain := s.getPlain(t, "/v2/?x=1")
	if plain.StatusCode != http.StatusNotFound || plain.Header.Get("Location") != "" {
		t.Errorf("plain HTTP without --https-redirect: %s, Location %q; want 404", plain.Status, plain.Header.Get("Location"))
	}
	if !s.logHas("ACME certificate obtained", "domain="+s.domain, "expires=") {
		t.Error("no log line of the certificate obtained with its domain and expiry")
	}
	// A restart loads the certificate from <data-dir>/acme instead of getting a new one.
	s.server.Restart(t)
	again := s.checkServed(t)
	if a, b := resp.TLS.PeerCertificates[0].SerialNumber, again.TLS.PeerCertificates[0].SerialNumber; a.Cmp(b) != 0 {
		t.Errorf("after a restart the server serves serial %s, before %s: want the stored certificate", b, a)
	}
}

// TestTLSALPN01: with only TLS-ALPN-01 reachable, serve gets its certificate on its TLS
// listener; --https-redirect makes the plain listener answer 308 to the same path and query
// on HTTPS (on the certificate's name, whatever Host a client sends), and --hsts puts
// Strict-Transport-Security on HTTPS answers.
func TestTLSALPN01(t *testing.T) {
	t.Parallel()
	s := newSite(t, "alpn", 0, "tls-alpn-01")
	s.start(t, []string{"--http-listen", fmt.Sprintf("127.0.0.1:%d", s.httpPort), "--acme-challenges", "tls-alpn-01",
		"--https-redirect", "--hsts", "8760h"})
	resp := s.checkServed(t)
	if h := resp.Header.Get("Strict-Transport-Security"); h != "max-age=31536000" {
		t.Errorf("HSTS header %q, want max-age=31536000", h)
	}
	plain := s.getPlain(t, "/v2/library/busybox/manifests/latest?ns=docker.io")
	want := s.url("/v2/library/busybox/manifests/latest?ns=docker.io")
	if plain.StatusCode != http.StatusPermanentRedirect || plain.Header.Get("Location") != want {
		t.Errorf("plain HTTP with --https-redirect: %s, Location %q; want 308 to %s", plain.Status, plain.Header.Get("Location"), want)
	}
	if h := plain.Header.Get("Strict-Transport-Security"); h != "" {
		t.Errorf("HSTS header %q on plain HTTP, want none (RFC 6797 8.1)", h)
	}
	// A forged Host header does not move the redirect off the certificate's name.
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/v2/", s.httpPort), nil)
	req.Host = "evil.example"
	forged, err := s.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	forged.Body.Close()
	if loc := forged.Header.Get("Location"); forged.StatusCode != http.StatusPermanentRedirect || loc != s.url("/v2/") {
		t.Errorf("redirect of Host evil.example: %s to %q, want 308 to %s", forged.Status, loc, s.url("/v2/"))
	}
}

// TestDNS01: with neither HTTP-01 nor TLS-ALPN-01 reachable, serve gets its certificate by
// DNS-01, adding the TXT record to knotd with an RFC 2136 update signed with the TSIG key
// read from a file; the secret never appears in the server's log.
func TestDNS01(t *testing.T) {
	t.Parallel()
	s := newSite(t, "dns", 0)
	secretFile := filepath.Join(t.TempDir(), "tsig.secret")
	if err := os.WriteFile(secretFile, []byte(s.dns.Secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start(t, []string{"--acme-rfc2136-server", s.dns.Addr, "--acme-rfc2136-key-name", s.dns.KeyName,
		"--acme-rfc2136-key-alg", s.dns.KeyAlg, "--acme-rfc2136-secret-file", secretFile, "--log-level", "debug"})
	s.checkServed(t)
	b, err := os.ReadFile(s.server.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), s.dns.Secret) {
		t.Error("the TSIG secret is in the server's log")
	}
	if !s.logHas("ACME certificate obtained", "domain="+s.domain) {
		t.Error("no log line of the certificate obtained")
	}
}

// TestRenewal: with certificates valid for 30 s and the renewal check every second (the test
// knob PULPGO_ACME_RENEW_CHECK_INTERVAL), the server renews in the background (at a time
// certmagic picks in the renewal window Pebble's ACME Renewal Information gives, which for
// Pebble spans the whole validity) and new handshakes get the new certificate, without a
// restart.
func TestRenewal(t *testing.T) {
	t.Parallel()
	s := newSite(t, "renew", 30*time.Second, "tls-alpn-01")
	s.start(t, []string{"--acme-challenges", "tls-alpn-01"}, "PULPGO_ACME_RENEW_CHECK_INTERVAL=1s")
	first := s.checkServed(t).TLS.PeerCertificates[0]
	var serial *big.Int
	deadline := first.NotAfter.Add(10 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond) // waiting for the background renewal, not timing it
		resp, err := s.client().Get(s.url("/v2/"))
		if err != nil {
			continue
		}
		resp.Body.Close()
		if serial = resp.TLS.PeerCertificates[0].SerialNumber; serial.Cmp(first.SerialNumber) != 0 {
			break
		}
	}
	if serial == nil || serial.Cmp(first.SerialNumber) == 0 {
		t.Fatalf("the certificate (serial %s, expiring %s) was not renewed", first.SerialNumber, first.NotAfter)
	}
	if !s.logHas("ACME certificate renewed", "domain="+s.domain, "expires=") {
		t.Error("no log line of the renewal")
	}
	s.checkServed(t)
}

// TestSharedDatabase: two processes sharing one PostgreSQL database (as content processes
// behind a load balancer do) share one ACME account and certificate through it: the first
// gets the certificate, the second loads it instead of getting its own, so both serve the
// same serial; nothing is written to their data directories.
func TestSharedDatabase(t *testing.T) {
	t.Parallel()
	s := newSite(t, "shared", 0)
	secretFile := filepath.Join(t.TempDir(), "tsig.secret")
	if err := os.WriteFile(secretFile, []byte(s.dns.Secret), 0o600); err != nil {
		t.Fatal(err)
	}
	engine := testenv.Postgres(t)
	args := []string{"--db-encryption-key", testenv.KeyFile(t), "--acme-rfc2136-server", s.dns.Addr,
		"--acme-rfc2136-key-name", s.dns.KeyName, "--acme-rfc2136-secret-file", secretFile}
	other := port(t)
	// One after the other: harness.Start may only fail t from the test's goroutine. The lock
	// that orders processes starting together is tested in models (TestACMELock).
	first := s.run(t, s.tlsPort, engine, args, nil)
	second := s.run(t, other, engine, args, nil)
	a := s.checkServedOn(t, s.tlsPort).TLS.PeerCertificates[0]
	b := s.checkServedOn(t, other).TLS.PeerCertificates[0]
	if a.SerialNumber.Cmp(b.SerialNumber) != 0 {
		t.Errorf("the two processes serve certificates %s and %s: want one, shared", a.SerialNumber, b.SerialNumber)
	}
	for _, srv := range []*harness.Server{first, second} {
		if _, err := os.Stat(filepath.Join(srv.DataDir, "acme")); !os.IsNotExist(err) {
			t.Errorf("%s/acme exists (%v): the certificate belongs in the database", srv.DataDir, err)
		}
	}
}

// TestBadConfigRefused: settings that cannot work stop the start with a message naming
// them (exit status 2), and a TSIG secret that does not parse is not echoed.
func TestBadConfigRefused(t *testing.T) {
	bin := harness.Binary(t)
	const secret = "not*base64*s3cret"
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--acme-domains", "a." + Zone, "--tls-cert", "c.pem", "--tls-key", "k.pem"}, "--acme-domains and --tls-cert exclude each other"},
		{[]string{"--acme-domains", "a." + Zone, "--acme-rfc2136-server", "127.0.0.1:53"}, "TSIG key name is not set"},
		{[]string{"--acme-domains", "a." + Zone, "--acme-rfc2136-server", "127.0.0.1:53", "--acme-rfc2136-key-name", "k"}, "TSIG secret is not base64"},
		{[]string{"--acme-domains", "a." + Zone, "--acme-challenges", "http-01"}, "http-01 needs --http-listen"},
		{[]string{"--https-redirect"}, "--https-redirect needs --http-listen"},
		{[]string{"--hsts", "1h"}, "--hsts needs HTTPS"},
	}
	for _, c := range cases {
		cmd := exec.Command(bin, append([]string{"serve", "--data-dir", t.TempDir()}, c.args...)...)
		cmd.Env = append(os.Environ(), "PULPGO_ACME_RFC2136_SECRET="+secret)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !asExit(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), c.want) {
			t.Errorf("%v: exit %v, output %q; want exit 2 and %q", c.args, err, out, c.want)
		}
		if strings.Contains(string(out), secret) {
			t.Errorf("%v: the secret is in the output %q", c.args, out)
		}
	}
}

// asExit reports whether err is an *exec.ExitError, setting *target.
func asExit(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	*target = e
	return ok
}
