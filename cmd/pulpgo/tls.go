package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certCheckInterval is how often a handshake looks whether the certificate files changed.
const certCheckInterval = time.Second

// certReloader serves the certificate and key of two PEM files, reloading them when either
// file changes (a renewed certificate is served without a restart). A pair that does not load
// is logged and the previous one kept.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string // the files' sizes and modification times when cert was loaded
	checked time.Time
}

// dnsNames are the DNS names of the certificate loaded at the start (none when it names only
// IP addresses or does not parse).
func (r *certReloader) dnsNames() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cert == nil || len(r.cert.Certificate) == 0 {
		return nil
	}
	leaf, err := x509.ParseCertificate(r.cert.Certificate[0])
	if err != nil {
		return nil
	}
	return leaf.DNSNames
}

// newCertReloader loads certFile and keyFile; it fails when they do not make a pair.
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	stamp, err := r.stampNow()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	r.cert, r.stamp, r.checked = &cert, stamp, time.Now()
	return r, nil
}

// stampNow describes the files as they are now.
func (r *certReloader) stampNow() (string, error) {
	var s string
	for _, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("TLS file: %w", err)
		}
		s += fmt.Sprintf("%d/%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return s, nil
}

// getCertificate is tls.Config.GetCertificate: the current pair, reloaded first when the files
// changed since the last look (at most once per certCheckInterval).
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) >= certCheckInterval {
		r.checked = time.Now()
		if stamp, err := r.stampNow(); err == nil && stamp != r.stamp {
			cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
			if err != nil {
				r.log.Warn("TLS certificate files changed but do not load; serving the previous pair", "cert", r.certFile, "key", r.keyFile, "err", err)
			} else {
				r.cert, r.stamp = &cert, stamp
				r.log.Info("TLS certificate reloaded", "cert", r.certFile)
			}
		}
	}
	return r.cert, nil
}

// tlsConfig returns the server TLS configuration serving r's certificate.
func (r *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{GetCertificate: r.getCertificate, MinVersion: tls.VersionTLS12}
}
