package main

import (
	"strings"
	"testing"
)

// TestPullAuthSettings: --htpasswd and --fills-require-auth, off by default, from the
// environment and from flags (the flag wins); a bad boolean is refused naming its variable.
func TestPullAuthSettings(t *testing.T) {
	c, err := parseConfig("serve", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Htpasswd != "" || c.FillsRequireAuth {
		t.Errorf("defaults: htpasswd %q, fills require auth %v; want none, false", c.Htpasswd, c.FillsRequireAuth)
	}
	t.Setenv("PULPGO_HTPASSWD", "/etc/pulpgo/htpasswd")
	t.Setenv("PULPGO_FILLS_REQUIRE_AUTH", "true")
	if c, err = parseConfig("serve", nil); err != nil || c.Htpasswd != "/etc/pulpgo/htpasswd" || !c.FillsRequireAuth {
		t.Errorf("from the environment: %+v, %v", c, err)
	}
	if c, err = parseConfig("content", []string{"--database-url", "postgres://x", "--redis-url", "redis://x",
		"--db-encryption-key", "k", "--htpasswd", "/srv/users", "--fills-require-auth=false"}); err != nil || c.Htpasswd != "/srv/users" || c.FillsRequireAuth {
		t.Errorf("from flags: %+v, %v", c, err)
	}
	t.Setenv("PULPGO_FILLS_REQUIRE_AUTH", "anonymous")
	if _, err := parseConfig("serve", nil); err == nil || !strings.Contains(err.Error(), "PULPGO_FILLS_REQUIRE_AUTH") {
		t.Errorf("PULPGO_FILLS_REQUIRE_AUTH=anonymous: %v", err)
	}
}
