package acme

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Zone is the test zone: every name in it resolves to 127.0.0.1.
const Zone = "pulpgo.test"

// DNS is a running knotd serving Zone and taking RFC 2136 updates of TXT records signed
// with its TSIG key.
type DNS struct {
	// Addr is its host:port (UDP and TCP).
	Addr string
	// KeyName, KeyAlg and Secret are the TSIG key allowed to update the zone.
	KeyName, KeyAlg, Secret string
}

// StartKnot starts knotd with its own configuration, run and storage directories on a
// loopback port, waits until it answers, and stops it when t ends.
func StartKnot(t *testing.T) *DNS {
	t.Helper()
	bin, err := exec.LookPath("knotd")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/knotd"); err != nil {
			t.Fatalf("knotd is not installed (apt-get install knot): %v", err)
		}
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	d := &DNS{Addr: fmt.Sprintf("127.0.0.1:%d", port(t)), KeyName: "pulpgo-acme.", KeyAlg: "hmac-sha256",
		Secret: base64.StdEncoding.EncodeToString(secret)}
	dir := t.TempDir()
	zone := fmt.Sprintf(`$ORIGIN %[1]s.
$TTL 60
@   SOA ns.%[1]s. hostmaster.%[1]s. 1 60 60 600 60
@   NS  ns
@   A   127.0.0.1
*   A   127.0.0.1
`, Zone)
	if err := os.WriteFile(filepath.Join(dir, Zone+".zone"), []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(d.Addr)
	conf := fmt.Sprintf(`server:
    rundir: "%[1]s"
    listen: 127.0.0.1@%[2]s
log:
  - target: stderr
    any: info
database:
    storage: "%[1]s"
key:
  - id: %[3]s
    algorithm: %[4]s
    secret: %[5]s
acl:
  - id: acme-update
    key: %[3]s
    action: update
    update-type: TXT
control:
    listen: "%[1]s/knot.sock"
zone:
  - domain: %[6]s.
    storage: "%[1]s"
    file: "%[6]s.zone"
    acl: acme-update
    zonefile-sync: -1
    journal-content: changes
`, dir, port, d.KeyName, d.KeyAlg, d.Secret, Zone)
	confFile := filepath.Join(dir, "knot.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := startDaemon(t, exec.Command(bin, "-c", confFile), filepath.Join(dir, "knotd.log"))
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(Zone), dns.TypeSOA)
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := dns.Exchange(m, d.Addr)
		if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			return d
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("knotd at %s does not answer for %s: %v, %v\n%s", d.Addr, Zone, r, err, b)
		}
		time.Sleep(50 * time.Millisecond) // waiting for knotd to load the zone, not timing it
	}
}
