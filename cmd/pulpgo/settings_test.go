package main

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// splitArgs are the flags a split role needs besides the one under test.
var splitArgs = []string{"--database-url", "postgres://db.invalid/pulp", "--redis-url", "redis://redis.invalid:6379/0"}

// TestEmptyAdminPasswordRefused checks that every role refuses an empty admin password, given
// as a flag or in the environment, with a message naming both.
func TestEmptyAdminPasswordRefused(t *testing.T) {
	for _, role := range []string{"serve", "api", "content", "worker", "migrate"} {
		t.Run(role+"/flag", func(t *testing.T) {
			_, err := parseConfig(role, append([]string{"--admin-password", ""}, splitArgs...))
			if err == nil || !strings.Contains(err.Error(), "--admin-password or PULPGO_ADMIN_PASSWORD") {
				t.Errorf("err %v, want the refusal of an empty admin password", err)
			}
		})
		t.Run(role+"/env", func(t *testing.T) {
			t.Setenv("PULPGO_ADMIN_PASSWORD", "")
			_, err := parseConfig(role, splitArgs)
			if err == nil || !strings.Contains(err.Error(), "admin password is empty") {
				t.Errorf("err %v, want the refusal of an empty admin password", err)
			}
		})
	}
	if _, err := parseConfig("serve", []string{"--admin-password", "s3cret"}); err != nil {
		t.Errorf("a non-empty password: %v", err)
	}
}

// TestLimitSettings checks the defaults of the connection and body limits, their environment
// variables, and that the flags win.
func TestLimitSettings(t *testing.T) {
	c, err := parseConfig("serve", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.BodyIdleTimeout != time.Minute || c.MaxConnections != 1024 {
		t.Errorf("defaults: body idle timeout %s, max connections %d; want 1m0s, 1024", c.BodyIdleTimeout, c.MaxConnections)
	}
	t.Setenv("PULPGO_BODY_IDLE_TIMEOUT", "5s")
	t.Setenv("PULPGO_MAX_CONNECTIONS", "7")
	if c, err = parseConfig("serve", nil); err != nil || c.BodyIdleTimeout != 5*time.Second || c.MaxConnections != 7 {
		t.Errorf("from the environment: %+v, %v", c, err)
	}
	if c, err = parseConfig("serve", []string{"--body-idle-timeout", "2s", "--max-connections", "3"}); err != nil ||
		c.BodyIdleTimeout != 2*time.Second || c.MaxConnections != 3 {
		t.Errorf("from flags: %+v, %v", c, err)
	}
	for _, bad := range [][]string{{"--body-idle-timeout", "0s"}, {"--max-connections", "0"}} {
		if _, err := parseConfig("serve", bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestDefaultPasswordWarning checks that the default admin password is warned about when the
// server listens on an address other hosts can reach, and only then.
func TestDefaultPasswordWarning(t *testing.T) {
	cases := []struct {
		ip       string
		password string
		warn     bool
	}{
		{"0.0.0.0", "password", true},
		{"::", "password", true},
		{"192.0.2.10", "password", true},
		{"127.0.0.1", "password", false},
		{"::1", "password", false},
		{"0.0.0.0", "s3cret", false},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, nil))
		warnDefaultPassword(log, &net.TCPAddr{IP: net.ParseIP(c.ip), Port: 24817}, c.password)
		got := strings.Contains(buf.String(), "level=WARN") && strings.Contains(buf.String(), "--admin-password")
		if got != c.warn {
			t.Errorf("%s with password %q: warned %v, want %v (log %q)", c.ip, c.password, got, c.warn, buf.String())
		}
	}
}

// TestBadEnvironmentRefused checks that a PULPGO_* duration or number that does not parse
// stops the start with a message naming the variable, instead of being ignored.
func TestBadEnvironmentRefused(t *testing.T) {
	for env, val := range map[string]string{
		"PULPGO_TAG_FRESHNESS":        "30",
		"PULPGO_UPSTREAM_TIMEOUT":     "five seconds",
		"PULPGO_BODY_IDLE_TIMEOUT":    "1x",
		"PULPGO_MAX_CONNECTIONS":      "many",
		"PULPGO_NEW_NAMES_PER_MINUTE": "1.5",
	} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, val)
			_, err := parseConfig("serve", nil)
			if err == nil || !strings.Contains(err.Error(), env) {
				t.Errorf("%s=%q: err %v, want a refusal naming the variable", env, val, err)
			}
		})
	}
	t.Setenv("PULPGO_TAG_FRESHNESS", "2m")
	if c, err := parseConfig("serve", nil); err != nil || c.TagFreshness != 2*time.Minute {
		t.Errorf("PULPGO_TAG_FRESHNESS=2m: %v, %v", c, err)
	}
}

// TestContentOrigin checks --content-origin: an http(s) URL of a host, its trailing slash
// dropped; anything else refused.
func TestContentOrigin(t *testing.T) {
	c, err := parseConfig("serve", []string{"--content-origin", "https://registry.example.com:8443/"})
	if err != nil || c.ContentOrigin != "https://registry.example.com:8443" {
		t.Fatalf("content origin: %+v, %v", c, err)
	}
	for _, bad := range []string{"registry.example.com", "ftp://h", "https://", "https://h/path"} {
		if _, err := parseConfig("serve", []string{"--content-origin", bad}); err == nil {
			t.Errorf("--content-origin %q accepted", bad)
		}
	}
}

// TestOrphanProtectionTimeSetting: Pulp's default, from the environment or the flag, and only
// within the range Pulp's orphan_protection_time allows.
func TestOrphanProtectionTimeSetting(t *testing.T) {
	c, err := parseConfig("serve", nil)
	if err != nil || c.OrphanProtectionTime != 1440 {
		t.Fatalf("default: %v, %v; want 1440", c, err)
	}
	t.Setenv("PULPGO_ORPHAN_PROTECTION_TIME", "0")
	if c, err = parseConfig("serve", nil); err != nil || c.OrphanProtectionTime != 0 {
		t.Errorf("from the environment: %+v, %v", c, err)
	}
	if c, err = parseConfig("serve", []string{"--orphan-protection-time", "90"}); err != nil || c.OrphanProtectionTime != 90 {
		t.Errorf("from the flag: %+v, %v", c, err)
	}
	for _, bad := range []string{"-1", "4294967296"} {
		if _, err := parseConfig("serve", []string{"--orphan-protection-time", bad}); err == nil {
			t.Errorf("--orphan-protection-time %s accepted", bad)
		}
	}
}

// TestTokenSettings checks the defaults of the token settings, their environment variables,
// that the flags win, and that bad values stop the start.
func TestTokenSettings(t *testing.T) {
	c, err := parseConfig("serve", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.TokenAuth || c.TokenKey != "" || c.TokenExpiration != 5*time.Minute {
		t.Errorf("defaults: token auth %v, key %q, expiration %s; want true, none, 5m0s", c.TokenAuth, c.TokenKey, c.TokenExpiration)
	}
	t.Setenv("PULPGO_TOKEN_AUTH", "false")
	t.Setenv("PULPGO_TOKEN_KEY", "/etc/pulpgo/token.pem")
	t.Setenv("PULPGO_TOKEN_EXPIRATION", "90s")
	if c, err = parseConfig("serve", nil); err != nil || c.TokenAuth || c.TokenKey != "/etc/pulpgo/token.pem" || c.TokenExpiration != 90*time.Second {
		t.Errorf("from the environment: %+v, %v", c, err)
	}
	if c, err = parseConfig("serve", []string{"--token-auth=true", "--token-expiration", "1h"}); err != nil || !c.TokenAuth || c.TokenExpiration != time.Hour {
		t.Errorf("from flags: %+v, %v", c, err)
	}
	for _, bad := range [][]string{{"--token-expiration", "0s"}, {"--token-expiration", "-1m"}, {"--token-auth=maybe"}} {
		if _, err := parseConfig("serve", bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	t.Setenv("PULPGO_TOKEN_AUTH", "sometimes")
	if _, err := parseConfig("serve", nil); err == nil || !strings.Contains(err.Error(), "PULPGO_TOKEN_AUTH") {
		t.Errorf("PULPGO_TOKEN_AUTH=sometimes: %v", err)
	}
}

// TestUpstreamProtectionSettings checks the defaults of the pull-budget threshold and the
// circuit breaker, their environment variables, that flags win, and that nonsense is refused.
func TestUpstreamProtectionSettings(t *testing.T) {
	c, err := parseConfig("serve", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.UpstreamBudgetLow != 0.10 || c.BreakerFailures != 5 || c.BreakerCooldown != 30*time.Second {
		t.Errorf("defaults: budget low %g, breaker %d / %s; want 0.1, 5 / 30s", c.UpstreamBudgetLow, c.BreakerFailures, c.BreakerCooldown)
	}
	t.Setenv("PULPGO_UPSTREAM_BUDGET_LOW", "0.25")
	t.Setenv("PULPGO_BREAKER_FAILURES", "3")
	t.Setenv("PULPGO_BREAKER_COOLDOWN", "10s")
	if c, err = parseConfig("serve", nil); err != nil || c.UpstreamBudgetLow != 0.25 || c.BreakerFailures != 3 || c.BreakerCooldown != 10*time.Second {
		t.Errorf("from the environment: %+v, %v", c, err)
	}
	if c, err = parseConfig("serve", []string{"--upstream-budget-low", "0", "--breaker-failures", "1", "--breaker-cooldown", "1s"}); err != nil ||
		c.UpstreamBudgetLow != 0 || c.BreakerFailures != 1 || c.BreakerCooldown != time.Second {
		t.Errorf("from flags: %+v, %v", c, err)
	}
	for _, bad := range [][]string{{"--upstream-budget-low", "1"}, {"--upstream-budget-low", "-0.1"},
		{"--breaker-failures", "0"}, {"--breaker-cooldown", "0s"}} {
		if _, err := parseConfig("serve", bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	t.Setenv("PULPGO_UPSTREAM_BUDGET_LOW", "a tenth")
	if _, err := parseConfig("serve", nil); err == nil || !strings.Contains(err.Error(), "PULPGO_UPSTREAM_BUDGET_LOW") {
		t.Errorf("a budget threshold that is not a number: %v", err)
	}
}

// TestFillResumesSetting checks --fill-resumes: the fill engine's default, the environment
// variable, the flag winning over it, and the refusal of a negative or absurd count.
func TestFillResumesSetting(t *testing.T) {
	cfg, err := parseConfig("serve", nil)
	if err != nil || cfg.FillResumes != 5 {
		t.Fatalf("default: %+v, %v; want 5 resumes", cfg, err)
	}
	t.Setenv("PULPGO_FILL_RESUMES", "0")
	if cfg, err = parseConfig("serve", nil); err != nil || cfg.FillResumes != 0 || fillResumes(cfg.FillResumes) >= 0 {
		t.Fatalf("PULPGO_FILL_RESUMES=0: %d, %v; want none", cfg.FillResumes, err)
	}
	if cfg, err = parseConfig("serve", []string{"--fill-resumes", "9"}); err != nil || cfg.FillResumes != 9 {
		t.Fatalf("--fill-resumes 9: %d, %v", cfg.FillResumes, err)
	}
	for _, bad := range []string{"-1", "101"} {
		if _, err := parseConfig("serve", []string{"--fill-resumes", bad}); err == nil || !strings.Contains(err.Error(), "--fill-resumes") {
			t.Errorf("--fill-resumes %s: %v, want a refusal naming the flag", bad, err)
		}
	}
}

// TestStorageQuotaSettings: the quota takes decimal and binary suffixes, from flags or the
// environment; watermarks out of order, a negative or unparsable size are refused.
func TestStorageQuotaSettings(t *testing.T) {
	c, err := parseConfig("serve", nil)
	if err != nil {
		t.Fatal(err)
	}
	if q := c.Quota; q.Bytes != 0 || q.High != 0.90 || q.Low != 0.80 || q.Interval != time.Minute || q.LastPullFlush != 30*time.Second {
		t.Errorf("defaults: %+v", q)
	}
	for in, want := range map[string]int64{"0": 0, "1048576": 1 << 20, "500MB": 500e6, "10GiB": 10 << 30,
		"1.5 KiB": 1536, "2g": 2 << 30, "7kb": 7000, "12B": 12} {
		c, err := parseConfig("serve", []string{"--storage-quota", in})
		if err != nil || c.Quota.Bytes != want {
			t.Errorf("--storage-quota %s: %v, %v; want %d", in, c, err, want)
		}
	}
	t.Setenv("PULPGO_STORAGE_QUOTA", "2MiB")
	t.Setenv("PULPGO_STORAGE_QUOTA_HIGH", "0.5")
	t.Setenv("PULPGO_STORAGE_QUOTA_LOW", "0.25")
	if c, err = parseConfig("serve", nil); err != nil || c.Quota.Bytes != 2<<20 || c.Quota.High != 0.5 || c.Quota.Low != 0.25 {
		t.Errorf("from the environment: %+v, %v", c, err)
	}
	for _, bad := range [][]string{{"--storage-quota", "-1"}, {"--storage-quota", "lots"}, {"--storage-quota", "5XB"},
		{"--storage-quota-high", "0.7", "--storage-quota-low", "0.8"}, {"--storage-quota-high", "1.5"},
		{"--storage-quota-low", "0"}, {"--storage-quota-interval", "0s"}, {"--last-pull-flush", "0s"}} {
		if _, err := parseConfig("serve", bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	t.Setenv("PULPGO_STORAGE_QUOTA", "a lot")
	if _, err := parseConfig("serve", nil); err == nil || !strings.Contains(err.Error(), "PULPGO_STORAGE_QUOTA") {
		t.Errorf("a quota that is not a size: %v", err)
	}
}
