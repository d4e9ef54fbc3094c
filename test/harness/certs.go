package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCA is a certificate authority of one test, for serving HTTPS on loopback to clients
// that trust it (and nothing else) through a CA file.
type TestCA struct {
	// Dir holds ca.crt, the CA's certificate in PEM: the directory podman's --cert-dir and
	// skopeo's --cert-dir take.
	Dir string
	// CertFile and KeyFile are the server's certificate and key (PEM), for --tls-cert and
	// --tls-key; Issue replaces them.
	CertFile, KeyFile string
	// Cert is the CA's certificate.
	Cert *x509.Certificate

	key    *ecdsa.PrivateKey
	serial int64
}

// NewTestCA makes a CA (serial 1) valid for a day and issues a first server certificate
// (serial 2) for localhost and 127.0.0.1 into CertFile and KeyFile.
func NewTestCA(t testing.TB) *TestCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pulpgo test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &TestCA{Dir: t.TempDir(), Cert: cert, key: key, serial: 1}
	writeFile(t, filepath.Join(ca.Dir, "ca.crt"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), 0o644)
	server := t.TempDir()
	ca.CertFile, ca.KeyFile = filepath.Join(server, "tls.crt"), filepath.Join(server, "tls.key")
	ca.Issue(t)
	return ca
}

// Pool returns a pool holding only the CA's certificate.
func (ca *TestCA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Issue signs a new server certificate for localhost and 127.0.0.1 (the next serial, valid
// for an hour) with a new key, replaces CertFile and KeyFile with it (each by a rename, as
// a renewal does), and returns its serial.
func (ca *TestCA) Issue(t testing.TB) int64 {
	t.Helper()
	ca.serial++
	key := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(ca.serial), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, ca.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	replaceFile(t, ca.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	return tmpl.SerialNumber.Int64()
}

// CopyTo replaces certFile and keyFile (by renames) with the CA's current server pair: to put
// another CA's certificate in place of a server's.
func (ca *TestCA) CopyTo(t testing.TB, certFile, keyFile string) {
	t.Helper()
	for _, f := range [][2]string{{ca.CertFile, certFile}, {ca.KeyFile, keyFile}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		replaceFile(t, f[1], b)
	}
}

// TLSArgs are the serve arguments that make the server use the CA's server certificate.
func (ca *TestCA) TLSArgs() []string {
	return []string{"--tls-cert", ca.CertFile, "--tls-key", ca.KeyFile}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// replaceFile writes b beside path and renames it over path.
func replaceFile(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
