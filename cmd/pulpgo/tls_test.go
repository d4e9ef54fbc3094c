package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// TestTLSReload: with --tls-cert and --tls-key serve answers HTTPS (the registry's token realm
// is https), a plain HTTP request gets no answer but an error, and replacing the files makes
// new handshakes get the new certificate without a restart; files that do not load keep the
// previous pair; one flag without the other is refused.
func TestTLSReload(t *testing.T) {
	ca := harness.NewTestCA(t) // the server's first certificate has serial 2
	certFile, keyFile := ca.CertFile, ca.KeyFile
	firstKey, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}

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

	pool := ca.Pool()
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
	if err != nil || serial != 2 {
		t.Fatalf("first certificate: serial %d, %v", serial, err)
	}
	if ch := resp.Header.Get("WWW-Authenticate"); ch == "" || !strings.Contains(ch, `realm="https://`+addr+`/token/"`) {
		t.Errorf("challenge over HTTPS: %q", ch)
	}
	if r, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/v2/"); err == nil && r.StatusCode == http.StatusOK {
		t.Error("plain HTTP was answered 200 on the TLS listener")
	}

	// Renewal: new files, new handshakes get them.
	renewed := ca.Issue(t)
	deadline = time.Now().Add(10 * time.Second)
	for serial != renewed && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // the reloader looks at most once a second
		serial, _, _ = served()
	}
	if serial != renewed {
		t.Fatalf("after renewal: serial %d, want %d", serial, renewed)
	}
	// A broken pair (the key of the first certificate) keeps the second.
	if err := os.WriteFile(keyFile+".new", firstKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(keyFile+".new", keyFile); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond) // past one reload check
	if serial, _, err = served(); err != nil || serial != renewed {
		t.Fatalf("after a broken renewal: serial %d, %v; want the previous pair", serial, err)
	}

	if _, err := parseConfig("serve", []string{"--tls-cert", certFile}); err == nil {
		t.Error("--tls-cert without --tls-key was accepted")
	}
}
