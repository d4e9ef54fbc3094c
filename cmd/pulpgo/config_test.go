package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/models"
)

var servers = []string{"--database-url", "postgres://db/pulp", "--redis-url", "redis://r/0"}

// TestSplitRolesNeedKey: api, worker and content share a database across hosts, so none of
// them may make up a key of its own.
func TestSplitRolesNeedKey(t *testing.T) {
	t.Setenv("PULPGO_DB_ENCRYPTION_KEY", "")
	for _, role := range []string{"api", "worker", "content"} {
		_, err := parseConfig(role, append([]string{"--data-dir", t.TempDir()}, servers...))
		if err == nil || !strings.Contains(err.Error(), "needs --db-encryption-key") {
			t.Errorf("%s without a key: %v; want a refusal naming --db-encryption-key", role, err)
		}
		c, err := parseConfig(role, append([]string{"--db-encryption-key", "/k"}, servers...))
		if err != nil || c.DBEncryptionKey != "/k" {
			t.Errorf("%s with --db-encryption-key: %v %+v", role, err, c)
		}
	}
	t.Setenv("PULPGO_DB_ENCRYPTION_KEY", "/env/k")
	if c, err := parseConfig("api", servers); err != nil || c.DBEncryptionKey != "/env/k" {
		t.Errorf("api with PULPGO_DB_ENCRYPTION_KEY: %v %+v", err, c)
	}
}

// TestMigrateNeedsKeyForSharedDatabase: migrate of the embedded database may create the key
// as serve does; migrate of a PostgreSQL database must be given the roles' key.
func TestMigrateNeedsKeyForSharedDatabase(t *testing.T) {
	t.Setenv("PULPGO_DB_ENCRYPTION_KEY", "")
	if _, err := parseConfig("migrate", []string{"--database-url", "postgres://db/pulp"}); err == nil ||
		!strings.Contains(err.Error(), "needs --db-encryption-key") {
		t.Errorf("migrate of PostgreSQL without a key: %v", err)
	}
	if _, err := parseConfig("migrate", []string{"--data-dir", t.TempDir()}); err != nil {
		t.Errorf("migrate of the embedded database: %v", err)
	}
}

// TestServeCreatesKeyOnce: serve without --db-encryption-key creates
// <data-dir>/db_symmetric_key, mode 0600, at its first start and reuses it after.
func TestServeCreatesKeyOnce(t *testing.T) {
	t.Setenv("PULPGO_DB_ENCRYPTION_KEY", "")
	dir := filepath.Join(t.TempDir(), "data")
	c, err := parseConfig("serve", []string{"--data-dir", dir})
	if err != nil {
		t.Fatal(err)
	}
	k1, path, created, err := c.loadKey("serve")
	if err != nil || !created || path != filepath.Join(dir, models.KeyFileName) {
		t.Fatalf("first start: key at %s, created %v, %v", path, created, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi, err)
	}
	k2, _, created, err := c.loadKey("serve")
	if err != nil || created || k2.ID() != k1.ID() {
		t.Errorf("second start: created %v, key %s (first %s), %v", created, k2.ID(), k1.ID(), err)
	}

	// A key given explicitly wins, and none is created in the data dir.
	other := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(other, []byte(strings.Repeat("A", 43)+"=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir2 := t.TempDir()
	c, _ = parseConfig("serve", []string{"--data-dir", dir2, "--db-encryption-key", other})
	if _, path, created, err := c.loadKey("serve"); err != nil || created || path != other {
		t.Errorf("serve with a key file: %s created %v %v", path, created, err)
	}
	if _, err := os.Stat(filepath.Join(dir2, models.KeyFileName)); !os.IsNotExist(err) {
		t.Errorf("serve with a key file created one in the data dir too: %v", err)
	}

	// A missing key file is an error naming it, not a new key.
	c, _ = parseConfig("api", append([]string{"--db-encryption-key", filepath.Join(dir2, "missing")}, servers...))
	if _, _, _, err := c.loadKey("api"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("api with a missing key file: %v", err)
	}
}

// TestAppName: --app-name (or PULPGO_APP_NAME) names the process's apps; a name that could not
// be shown in /status/ is refused.
func TestAppName(t *testing.T) {
	args := append([]string{"--db-encryption-key", "/k"}, servers...)
	if c, err := parseConfig("worker", args); err != nil || c.AppName != "" {
		t.Errorf("default: %v %q", err, c.AppName)
	}
	if c, err := parseConfig("worker", append(args, "--app-name", "pulpgo-worker-0")); err != nil || c.AppName != "pulpgo-worker-0" {
		t.Errorf("--app-name: %v %+v", err, c)
	}
	t.Setenv("PULPGO_APP_NAME", "worker-1")
	if c, err := parseConfig("worker", args); err != nil || c.AppName != "worker-1" {
		t.Errorf("PULPGO_APP_NAME: %v %+v", err, c)
	}
	for _, bad := range []string{"a b", "a\nb", strings.Repeat("x", 201)} {
		if _, err := parseConfig("worker", append(args, "--app-name", bad)); err == nil || !strings.Contains(err.Error(), "--app-name") {
			t.Errorf("--app-name %q: %v; want a refusal", bad, err)
		}
	}
}
