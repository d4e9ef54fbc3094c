package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestACMEChallengesChosen: without --acme-challenges the challenge types are those the
// listeners and settings allow; the domains and settings come from flags or PULPGO_* variables,
// and the TSIG secret from its file (trimmed) or PULPGO_ACME_RFC2136_SECRET.
func TestACMEChallengesChosen(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "tsig")
	if err := os.WriteFile(secretFile, []byte("c2VjcmV0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dns := []string{"--acme-rfc2136-server", "127.0.0.1:53", "--acme-rfc2136-key-name", "k", "--acme-rfc2136-secret-file", secretFile}
	cases := []struct {
		args []string
		want []string
	}{
		{nil, []string{"tls-alpn-01"}},
		{[]string{"--http-listen", ":80"}, []string{"http-01", "tls-alpn-01"}},
		{dns, []string{"dns-01"}},
		{[]string{"--http-listen", ":80", "--acme-challenges", "http-01"}, []string{"http-01"}},
	}
	for _, c := range cases {
		cfg, err := parseConfig("serve", append([]string{"--acme-domains", "a.example, b.example"}, c.args...))
		if err != nil {
			t.Errorf("%v: %v", c.args, err)
			continue
		}
		if !slices.Equal(cfg.ACME.Challenges, c.want) || !slices.Equal(cfg.ACME.Domains, []string{"a.example", "b.example"}) {
			t.Errorf("%v: challenges %v, domains %v; want %v", c.args, cfg.ACME.Challenges, cfg.ACME.Domains, c.want)
		}
	}
	t.Setenv("PULPGO_ACME_DOMAINS", "env.example")
	t.Setenv("PULPGO_ACME_RFC2136_SERVER", "127.0.0.1:53")
	t.Setenv("PULPGO_ACME_RFC2136_KEY_NAME", "k")
	t.Setenv("PULPGO_ACME_RFC2136_SECRET", "ZW52")
	cfg, err := parseConfig("serve", nil)
	if err != nil || cfg.ACME.RFC2136.Secret != "ZW52" || !slices.Equal(cfg.ACME.Domains, []string{"env.example"}) {
		t.Fatalf("from the environment: %+v, %v", cfg, err)
	}
	if cfg, err = parseConfig("serve", []string{"--acme-rfc2136-secret-file", secretFile}); err != nil || cfg.ACME.RFC2136.Secret != "c2VjcmV0" {
		t.Errorf("the secret file wins over the variable: %v", err)
	}
	t.Setenv("PULPGO_ACME_RFC2136_SECRET", "")
	t.Setenv("PULPGO_ACME_RENEW_CHECK_INTERVAL", "soon")
	if _, err := parseConfig("serve", nil); err == nil || !strings.Contains(err.Error(), "PULPGO_ACME_RENEW_CHECK_INTERVAL") {
		t.Errorf("a bad renewal interval: %v", err)
	}
}
