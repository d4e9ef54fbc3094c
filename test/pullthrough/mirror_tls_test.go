package pullthrough

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// servedCert returns the certificate a new TLS handshake with addr gets. It only reads it: the
// handshake does not verify it (the clients under test do).
func servedCert(addr string) (*x509.Certificate, error) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // inspecting, not trusting
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// waitServed waits until new handshakes with addr get a certificate with serial from issuer.
func waitServed(t testing.TB, addr string, issuer *x509.Certificate, serial int64) {
	t.Helper()
	client.Poll(t, fmt.Sprintf("the server to serve certificate %d of %s", serial, issuer.Subject), func() (bool, string) {
		c, err := servedCert(addr)
		if err != nil {
			return false, err.Error()
		}
		if c.SerialNumber.Int64() == serial && c.CheckSignatureFrom(issuer) == nil {
			return true, ""
		}
		return false, fmt.Sprintf("serving serial %d from %s", c.SerialNumber, c.Issuer)
	})
}

// TestMirrorHTTPS: with --tls-cert/--tls-key, podman and skopeo pull over HTTPS trusting only
// a CA file (--cert-dir; no insecure setting anywhere), the token realm is the https content
// origin, podman's
// docker.io mirror works over HTTPS, and a certificate replaced on disk is what the next pull
// gets without a restart: one from an unknown CA makes podman refuse, a renewal from the
// trusted CA makes it pull again.
func TestMirrorHTTPS(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		client.NeedTools(t, "podman", "skopeo")
		hub, img := startBusyboxHub(t)
		ca := harness.NewTestCA(t)
		port := testenv.FreePort(t)
		origin := fmt.Sprintf("https://localhost:%d", port)
		e := startServerWith(t, harness.Options{Engine: eng, TLS: &tls.Config{RootCAs: ca.Pool()}, Listen: fmt.Sprintf("127.0.0.1:%d", port),
			Args: append(ca.TLSArgs(), "--mirror", "docker-cache", "--content-origin", origin)})
		e.createCache(t, "docker-cache", cacheBase, hub.URL(), nil, nil)
		addr := strings.TrimPrefix(e.srv.URL, "https://")

		// The challenge sends clients to the https realm of the content origin (another name
		// of the server, which the clients then verify too).
		resp, err := e.reg.HTTP.Get(e.srv.URL + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /v2/ over HTTPS: %d, want the 401 challenge", resp.StatusCode)
		}
		if ch := client.ParseChallenge(resp.Header.Get("WWW-Authenticate")); ch.Realm != origin+"/token/" {
			t.Errorf("token realm %q, want %s/token/", ch.Realm, origin)
		}

		// registries.conf with nothing insecure: the CA file is the only trust.
		home := harness.NewClientHome(t, e.srv)
		home.PodmanEnv(t)
		conf := filepath.Join(home.Dir, ".containers", "registries.conf")
		writeConf := func(content string) {
			t.Helper()
			if err := os.WriteFile(conf, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		writeConf("unqualified-search-registries = []\n")
		ref := addr + "/" + cacheBase + "/library/busybox:latest"
		digestOf := func(name string) string {
			t.Helper()
			return strings.TrimSpace(home.Run(t, "podman", "image", "inspect", "--format", "{{.Digest}}", name).Must(t).Stdout)
		}
		home.Run(t, "podman", "pull", "--cert-dir", ca.Dir, ref).Must(t)
		if d := digestOf(ref); d != img.ManifestDigest {
			t.Errorf("podman pulled %s, want %s", d, img.ManifestDigest)
		}

		out := home.Run(t, "skopeo", "inspect", "--cert-dir", ca.Dir, "docker://"+ref).Must(t).Stdout
		var insp struct{ Digest string }
		if err := json.Unmarshal([]byte(out), &insp); err != nil || insp.Digest != img.ManifestDigest {
			t.Errorf("skopeo inspect: digest %q (%v), want %s", insp.Digest, err, img.ManifestDigest)
		}
		dir := filepath.Join(t.TempDir(), "image")
		home.Run(t, "skopeo", "copy", "--quiet", "--src-cert-dir", ca.Dir, "docker://"+ref, "dir:"+dir).Must(t)
		checkDirCopy(t, dir, img)

		// docker.io mirrored to the server over HTTPS (docker.io itself dead).
		writeConf(podmanMirror(deadAddr(t), addr, false))
		home.Run(t, "podman", "pull", "--cert-dir", ca.Dir, "docker.io/library/busybox:latest").Must(t)
		if d := digestOf("docker.io/library/busybox:latest"); d != img.ManifestDigest {
			t.Errorf("podman pulled %s through the HTTPS mirror, want %s", d, img.ManifestDigest)
		}
		writeConf("unqualified-search-registries = []\n")
		checkOneFetch(t, hub, img)
		e.checkOneChild(t, cacheBase+"/library/busybox")

		// A certificate from a CA podman does not trust, put in place on disk: refused.
		other := harness.NewTestCA(t)
		other.CopyTo(t, ca.CertFile, ca.KeyFile)
		waitServed(t, addr, other.Cert, 2)
		r := home.Run(t, "podman", "pull", "--cert-dir", ca.Dir, ref)
		if r.Code == 0 || !strings.Contains(r.Stderr, "certificate") {
			t.Errorf("podman pulled from a server whose certificate no trusted CA signed: exit %d\n%s", r.Code, r.Stderr)
		}
		// A renewal from the trusted CA: served to the next pull, no restart.
		serial := ca.Issue(t)
		waitServed(t, addr, ca.Cert, serial)
		home.Run(t, "podman", "pull", "--cert-dir", ca.Dir, ref).Must(t)
		if err := e.srv.ExitErr(); err != nil {
			t.Errorf("the server exited: %v", err)
		}
	})
}

// TestMirrorContainerdHTTPS: containerd's ctr with a hosts.toml whose mirror host is the
// server over HTTPS, trusted through the hosts.toml's ca line only (no skip_verify), fetches
// docker.io/library/busybox; with another CA's file in that line the fetch fails.
func TestMirrorContainerdHTTPS(t *testing.T) {
	harness.NeedContainerd(t)
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		hub, img := startBusyboxHub(t)
		ca := harness.NewTestCA(t)
		e := startServerWith(t, harness.Options{Engine: eng, TLS: &tls.Config{RootCAs: ca.Pool()},
			Args: append(ca.TLSArgs(), "--mirror", "docker-cache")})
		e.createCache(t, "docker-cache", cacheBase, hub.URL(), nil, nil)
		ctd := harness.StartContainerd(t)

		fetch := func(caFile string) harness.Result {
			t.Helper()
			hosts := t.TempDir()
			conf := fmt.Sprintf(containerdCAHostsToml, "https://"+deadAddr(t), e.srv.URL, caFile)
			if err := os.MkdirAll(filepath.Join(hosts, "docker.io"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(hosts, "docker.io", "hosts.toml"), []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			return ctd.Ctr(t, e.home, "content", "fetch", "--hosts-dir", hosts, "docker.io/library/busybox:latest")
		}
		other := harness.NewTestCA(t)
		if r := fetch(filepath.Join(other.Dir, "ca.crt")); r.Code == 0 || !strings.Contains(r.Stderr, "certificate") {
			t.Errorf("ctr fetched from a mirror whose certificate the ca file did not sign: exit %d\n%s", r.Code, r.Stderr)
		}
		fetch(filepath.Join(ca.Dir, "ca.crt")).Must(t)
		out := ctd.Ctr(t, e.home, "content", "ls", "-q").Must(t).Stdout
		for _, d := range append([]string{img.ManifestDigest}, blobDigests(img)...) {
			if !strings.Contains(out, d) {
				t.Errorf("containerd's content store lacks %s:\n%s", d, out)
			}
		}
		checkOneFetch(t, hub, img)
	})
}
