package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/testenv"
)

// selfSigned returns a PEM certificate for 127.0.0.1 with serial and its PEM key.
func selfSigned(t *testing.T, serial int64) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "pulpgo test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), cert
}

// writeAtomically replaces path with b (a rename, as a certificate renewal does).
func writeAtomically(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestTLSReload: with --tls-cert and --tls-key serve answers HTTPS (the registry's token realm
// is https), a plain HTTP request gets no answer but an error, and replacing the files makes
// new handshakes get the new certificate without a restart; files that do not load keep the
// previous pair; one flag without the other is refused.
func TestTLSReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	c1, k1, x1 := selfSigned(t, 1)
	c2, k2, x2 := selfSigned(t, 2)
	writeAtomically(t, certFile, c1)
	writeAtomically(t, keyFile, k1)

	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg, err := parseConfig("serve", []string{"--listen", addr, "--data-dir", t.TempDir(), "--log-level", "error",
		"--tls-cert", certFile, "--tls-key", keyFile})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, "serve", cfg) }()
	t.Cleanup(func() { cancel(); <-done })

	pool := x509.NewCertPool()
	pool.AddCert(x1)
	pool.AddCert(x2)
	// served returns the serial of the certificate a new handshake gets, or an error.
	served := func() (int64, *http.Response, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + addr + "/v2/")
		if err != nil {
			return 0, nil, err
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64(), resp, nil
	}
	deadline := time.Now().Add(30 * time.Second)
	var serial int64
	var resp *http.Response
	for {
		serial, resp, err = served()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // waiting for serve to listen, not timing it
	}
	if err != nil || serial != 1 {
		t.Fatalf("first certificate: serial %d, %v", serial, err)
	}
	if ch := resp.Header.Get("WWW-Authenticate"); ch == "" || !strings.Contains(ch, `realm="https://`+addr+`/token/"`) {
		t.Errorf("challenge over HTTPS: %q", ch)
	}
	if r, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/v2/"); err == nil && r.StatusCode == http.StatusOK {
		t.Error("plain HTTP was answered 200 on the TLS listener")
	}

	// Renewal: new files, new handshakes get them.
	writeAtomically(t, certFile, c2)
	writeAtomically(t, keyFile, k2)
	deadline = time.Now().Add(10 * time.Second)
	for serial != 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // the reloader looks at most once a second
		serial, _, _ = served()
	}
	if serial != 2 {
		t.Fatalf("after renewal: serial %d, want 2", serial)
	}
	// A broken pair (the key of the first certificate) keeps the second.
	writeAtomically(t, keyFile, k1)
	time.Sleep(1200 * time.Millisecond) // past one reload check
	if serial, _, err = served(); err != nil || serial != 2 {
		t.Fatalf("after a broken renewal: serial %d, %v; want the previous pair", serial, err)
	}

	if _, err := parseConfig("serve", []string{"--tls-cert", certFile}); err == nil {
		t.Error("--tls-cert without --tls-key was accepted")
	}
}
