package upstream

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// testProxy is an HTTP proxy (forwarding and CONNECT) that demands Basic proxy credentials
// and only reaches 127.0.0.1.
type testProxy struct {
	t          *testing.T
	user, pass string

	mu   sync.Mutex
	seen []string // "METHOD host" of each proxied request
}

func (p *testProxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

func (p *testProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(p.user+":"+p.pass))
	if r.Header.Get("Proxy-Authorization") != want {
		w.Header().Set("Proxy-Authenticate", `Basic realm="proxy"`)
		w.WriteHeader(http.StatusProxyAuthRequired)
		return
	}
	host := r.Host
	if r.Method != http.MethodConnect {
		host = r.URL.Host
	}
	if h, _, _ := net.SplitHostPort(host); h != "127.0.0.1" {
		p.t.Errorf("proxy asked for %s", host)
		w.WriteHeader(http.StatusForbidden)
		return
	}
	p.mu.Lock()
	p.seen = append(p.seen, r.Method+" "+host)
	p.mu.Unlock()

	if r.Method == http.MethodConnect {
		dst, err := net.Dial("tcp", host)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			dst.Close()
			return
		}
		io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() {
			io.Copy(dst, buf)
			dst.Close()
		}()
		io.Copy(conn, dst)
		conn.Close()
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Header.Del("Proxy-Authorization")
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// certPEM is the PEM of the test server's certificate.
func certPEM(s *httptest.Server) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}))
}

func TestProxy(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "http registry, forwarded"
		if useTLS {
			name = "https registry, CONNECT"
		}
		t.Run(name, func(t *testing.T) {
			p := &testProxy{t: t, user: "proxyuser", pass: "proxy-s3cret"}
			ps := httptest.NewServer(p)
			t.Cleanup(ps.Close)
			f := newFake(t, authBearer, func(f *fakeRegistry) { f.tls = useTLS })
			f.addManifest("a", "latest", ociManifestType, ociManifest(1))
			c := newClient(t, f.reg.URL, func(c *Config) {
				c.ProxyURL = ps.URL
				c.ProxyUsername, c.ProxyPassword = p.user, p.pass
				if useTLS {
					c.CACert = certPEM(f.reg)
				}
			})
			if _, _, err := c.GetManifest(context.Background(), "a", "latest", nil); err != nil {
				t.Fatalf("GetManifest through the proxy: %v", err)
			}
			seen := strings.Join(p.requests(), "\n")
			regHost := strings.TrimPrefix(strings.TrimPrefix(f.reg.URL, "https://"), "http://")
			realmHost := strings.TrimPrefix(strings.TrimPrefix(f.realm.URL, "https://"), "http://")
			for _, want := range []string{regHost, realmHost} {
				if !strings.Contains(seen, want) {
					t.Errorf("proxy did not carry requests to %s; it saw:\n%s", want, seen)
				}
			}
			if useTLS && !strings.Contains(seen, "CONNECT "+regHost) {
				t.Errorf("no CONNECT to the registry; proxy saw:\n%s", seen)
			}

			bad := newClient(t, f.reg.URL, func(c *Config) {
				c.ProxyURL = ps.URL
				c.ProxyUsername, c.ProxyPassword = p.user, "wrong-proxy-pw"
				c.TLSValidation = false
			})
			_, _, err := bad.GetManifest(context.Background(), "a", "latest", nil)
			if err == nil {
				t.Fatal("wrong proxy credentials accepted")
			}
			if strings.Contains(err.Error(), "wrong-proxy-pw") || strings.Contains(err.Error(), "proxy-s3cret") {
				t.Errorf("error leaks the proxy password: %v", err)
			}
		})
	}
}

// clientCert makes a self-signed client certificate and key, as PEM.
func clientCert(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "pulpgo-client"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

func TestTLS(t *testing.T) {
	cert, key := clientCert(t)
	tests := []struct {
		name       string
		mutual     bool
		cfg        func(c *Config, f *fakeRegistry)
		wantErr    bool
		wantClient string
	}{
		{name: "untrusted certificate", cfg: func(c *Config, f *fakeRegistry) {}, wantErr: true},
		{name: "validation off", cfg: func(c *Config, f *fakeRegistry) { c.TLSValidation = false }},
		{name: "CA certificate", cfg: func(c *Config, f *fakeRegistry) { c.CACert = certPEM(f.reg) }},
		{name: "client certificate", mutual: true, wantClient: "pulpgo-client", cfg: func(c *Config, f *fakeRegistry) {
			c.CACert = certPEM(f.reg)
			c.ClientCert, c.ClientKey = cert, key
		}},
		{name: "client certificate missing", mutual: true, wantErr: true, cfg: func(c *Config, f *fakeRegistry) {
			c.CACert = certPEM(f.reg)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, authNone, func(f *fakeRegistry) {
				f.tls = true
				if tt.mutual {
					f.tlsCfg = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
				}
			})
			f.addManifest("a", "latest", ociManifestType, ociManifest(1))
			var clientCN string
			f.handle = func(w http.ResponseWriter, r *http.Request) bool {
				if len(r.TLS.PeerCertificates) > 0 {
					clientCN = r.TLS.PeerCertificates[0].Subject.CommonName
				}
				return false
			}
			c := newClient(t, f.reg.URL, func(c *Config) { tt.cfg(c, f) })
			_, err := c.HeadManifest(context.Background(), "a", "latest", nil)
			if tt.wantErr {
				if err == nil {
					t.Fatal("want a TLS error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if clientCN != tt.wantClient {
				t.Errorf("client certificate CN = %q, want %q", clientCN, tt.wantClient)
			}
		})
	}
}

func TestTransportSettings(t *testing.T) {
	c, err := New(Config{
		URL:           "https://registry-1.docker.io",
		TLSValidation: true,
		Headers:       map[string]string{"user-agent": "pulp/3", "x-extra": "1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tr := c.transport
	if !tr.DisableCompression || tr.MaxIdleConnsPerHost < 2 || tr.IdleConnTimeout == 0 || !tr.ForceAttemptHTTP2 {
		t.Errorf("transport = %+v", tr)
	}
	if tr.TLSClientConfig.InsecureSkipVerify {
		t.Error("TLSValidation true gave InsecureSkipVerify")
	}
	if c.userAgent != "pulpgo pulp/3" || c.headers.Get("X-Extra") != "1" || c.headers.Get("User-Agent") != "" {
		t.Errorf("userAgent %q, headers %v", c.userAgent, c.headers)
	}
	if c.timeout != defaultTimeout || c.idle != defaultIdleTimeout {
		t.Errorf("timeouts %v, %v", c.timeout, c.idle)
	}
}

func TestNewRejects(t *testing.T) {
	cert, key := clientCert(t)
	tests := []struct {
		name   string
		cfg    Config
		secret string // must not appear in the error
	}{
		{name: "empty URL", cfg: Config{}},
		{name: "ftp URL", cfg: Config{URL: "ftp://registry.example"}},
		{name: "no host", cfg: Config{URL: "https://"}},
		{name: "credentials in URL", cfg: Config{URL: "https://bob:url-s3cret@registry.example"}, secret: "url-s3cret"},
		{name: "bad port with credentials", cfg: Config{URL: "https://bob:url-s3cret@registry.example:x"}, secret: "url-s3cret"},
		{name: "query", cfg: Config{URL: "https://registry.example/?a=b"}},
		{name: "CA garbage", cfg: Config{URL: "https://r.example", CACert: "not pem"}},
		{name: "cert without key", cfg: Config{URL: "https://r.example", ClientCert: cert}},
		{name: "key without cert", cfg: Config{URL: "https://r.example", ClientKey: key}},
		{name: "mismatched key", cfg: Config{URL: "https://r.example", ClientCert: cert, ClientKey: "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"}},
		{name: "proxy scheme", cfg: Config{URL: "https://r.example", ProxyURL: "ftp://proxy.example"}},
		{name: "proxy credentials in URL", cfg: Config{URL: "https://r.example", ProxyURL: "http://u:proxy-s3cret@proxy.example"}, secret: "proxy-s3cret"},
		{name: "proxy password alone", cfg: Config{URL: "https://r.example", ProxyURL: "http://proxy.example", ProxyPassword: "p"}},
		{name: "proxy credentials without proxy", cfg: Config{URL: "https://r.example", ProxyUsername: "u", ProxyPassword: "p"}},
		{name: "header name", cfg: Config{URL: "https://r.example", Headers: map[string]string{"bad name": "x"}}},
		{name: "header value", cfg: Config{URL: "https://r.example", Headers: map[string]string{"X-A": "a\r\nInjected: 1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if err == nil {
				c.Close()
				t.Fatal("New accepted the config")
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
}
