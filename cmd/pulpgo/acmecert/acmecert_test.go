package acmecert

import (
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/test/imports"
)

// TestImports: the package uses certmagic, its logger and DNS libraries, and nothing else
// outside the standard library.
func TestImports(t *testing.T) {
	imports.Only(t, ".", "github.com/caddyserver/certmagic", "github.com/libdns/libdns", "github.com/miekg/dns",
		"go.uber.org/zap", "go.uber.org/zap/zapcore")
}

// TestRFC2136Check: incomplete or wrong DNS-01 settings are each named, and a secret that
// does not parse is refused without being echoed.
func TestRFC2136Check(t *testing.T) {
	const secret = "s3cret-that-is-not-base64!"
	cases := []struct {
		p    RFC2136
		want []string
	}{
		{RFC2136{}, []string{"DNS server (host:port) is not set", "key name is not set", "algorithm \"\"", "secret is not set"}},
		{RFC2136{Server: "ns1", KeyName: "k", KeyAlg: "hmac-md5", Secret: secret}, []string{"\"ns1\" is not host:port", "\"hmac-md5\" is not one of", "secret is not base64"}},
		{RFC2136{Server: "127.0.0.1:53", KeyName: "k", KeyAlg: "HMAC-SHA512.", Secret: "c2VjcmV0"}, nil},
	}
	for _, c := range cases {
		err := c.p.Check()
		if (err == nil) != (len(c.want) == 0) {
			t.Errorf("%+v: err %v, want %v", c.p, err, c.want)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: err %q does not say %q", c.p, err, w)
			}
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("the secret is in the error %q", err)
		}
	}
}
