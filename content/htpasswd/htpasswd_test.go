package htpasswd

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// entry returns an htpasswd line for user with a bcrypt hash of password whose version prefix
// is changed to version ("2a", "2b" or "2y": htpasswd -B writes 2y, Go's bcrypt 2a).
func entry(t *testing.T, user, password, version string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return user + ":$" + version + strings.TrimPrefix(string(h), "$2a") + "\n"
}

// write replaces the file at path by content through a rename, as editors and htpasswd do.
func write(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func logger(buf *bytes.Buffer) *slog.Logger { return slog.New(slog.NewTextHandler(buf, nil)) }

func TestParse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	md5 := "$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/"
	sha := "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="
	content := "# users of the cache\n\n" +
		entry(t, "alice", "alice-pass", "2y") +
		entry(t, "bob", "bob-pass", "2b") +
		entry(t, "carol", "carol-pass", "2a") +
		"mallory:" + md5 + "\n" +
		"trent:" + sha + "\n" +
		"crypt:rqXexS6ZhobKA\n" +
		"  " + entry(t, "dave", "dave-pass", "2y")
	write(t, path, content)
	var logs bytes.Buffer
	f, err := Open(path, Options{Logger: logger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user, pass string
		want       bool
	}{
		{"alice", "alice-pass", true},
		{"bob", "bob-pass", true},
		{"carol", "carol-pass", true},
		{"dave", "dave-pass", true},
		{"alice", "alice-pass", true}, // remembered
		{"alice", "bob-pass", false},
		{"alice", "", false},
		{"nobody", "alice-pass", false},
		{"mallory", "password", false},
		{"trent", "password", false},
		{"crypt", "password", false},
	} {
		if got := f.Authenticate(c.user, c.pass); got != c.want {
			t.Errorf("Authenticate(%q, %q) = %v, want %v", c.user, c.pass, got, c.want)
		}
	}
	if !f.Has("alice") || f.Has("mallory") || f.Has("nobody") {
		t.Errorf("Has: alice %v mallory %v nobody %v, want true false false", f.Has("alice"), f.Has("mallory"), f.Has("nobody"))
	}
	out := logs.String()
	for _, want := range []string{"line=6 user=mallory", "line=7 user=trent", "line=8 user=crypt"} {
		if !strings.Contains(out, want) {
			t.Errorf("no warning with %q in:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "not a bcrypt hash"); n != 3 {
		t.Errorf("%d warnings about skipped entries, want 3:\n%s", n, out)
	}
	for _, secret := range []string{md5, sha, "rqXexS6ZhobKA", "$2y$"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log shows a hash (%s):\n%s", secret, out)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing"), Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want a not-exist error", err)
	}
	for name, content := range map[string]string{
		"no colon":   entry(t, "alice", "a", "2y") + "bob\n",
		"empty user": ":$2y$04$abcdefghijklmnopqrstuu\n",
		"empty hash": "alice:\n",
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		write(t, path, content)
		_, err := Open(path, Options{})
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "line") {
			t.Errorf("%s: %v, want ErrMalformed naming the line", name, err)
		}
	}
}

func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	write(t, path, entry(t, "alice", "alice-pass", "2y"))
	var logs bytes.Buffer
	f, err := Open(path, Options{Logger: logger(&logs), CheckEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	if !f.Authenticate("alice", "alice-pass") {
		t.Fatal("alice refused")
	}

	// Changed: bob added, alice removed.
	write(t, path, entry(t, "bob", "bob-pass", "2y"))
	if !f.Authenticate("bob", "bob-pass") || f.Authenticate("alice", "alice-pass") || f.Has("alice") {
		t.Fatal("after the change: bob refused or alice still accepted")
	}

	// Malformed: bob is kept, with a warning.
	write(t, path, entry(t, "carol", "carol-pass", "2y")+"garbage\n")
	if !f.Authenticate("bob", "bob-pass") || f.Authenticate("carol", "carol-pass") {
		t.Error("a malformed file replaced the previous users")
	}
	if !strings.Contains(logs.String(), "not reloaded") {
		t.Errorf("no warning about the malformed file:\n%s", logs.String())
	}

	// Gone: its users are gone too (fail closed), with a warning.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if f.Authenticate("bob", "bob-pass") || f.Has("bob") {
		t.Error("a removed file's users still log in")
	}
	if !strings.Contains(logs.String(), "htpasswd file removed") {
		t.Errorf("no warning about the missing file:\n%s", logs.String())
	}

	// Back and good: its users count.
	write(t, path, entry(t, "carol", "carol-pass", "2y"))
	if !f.Authenticate("carol", "carol-pass") || f.Has("bob") {
		t.Error("the good file after a missing one was not loaded")
	}

	// A password change: the remembered login of the old one no longer counts.
	write(t, path, entry(t, "carol", "new-pass", "2y"))
	if f.Authenticate("carol", "carol-pass") || !f.Authenticate("carol", "new-pass") {
		t.Error("the old password still works after a change")
	}
}

// TestCheckInterval: the file is looked at once per CheckEvery, not at every use.
func TestCheckInterval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	write(t, path, entry(t, "alice", "alice-pass", "2y"))
	f, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	f.now = func() time.Time { return now }
	f.checked = now
	write(t, path, entry(t, "bob", "bob-pass", "2y"))
	if f.Has("bob") || !f.Has("alice") {
		t.Error("the file was looked at again within the check interval")
	}
	now = now.Add(DefaultCheckEvery)
	if !f.Has("bob") || f.Has("alice") {
		t.Error("the change was not seen after the check interval")
	}
}

// BenchmarkAuthenticate measures a login check: "remembered" is every request of a pull after
// the first (Basic credentials are sent with each), "bcrypt" a first login, at Go's
// DefaultCost (10; `htpasswd -B` writes cost 5 unless given -C).
func BenchmarkAuthenticate(b *testing.B) {
	path := filepath.Join(b.TempDir(), "htpasswd")
	h, err := bcrypt.GenerateFromPassword([]byte("alice-pass"), bcrypt.DefaultCost)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("alice:"+string(h)+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	f, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("remembered", func(b *testing.B) {
		f.Authenticate("alice", "alice-pass")
		for b.Loop() {
			if !f.Authenticate("alice", "alice-pass") {
				b.Fatal("refused")
			}
		}
	})
	b.Run("bcrypt", func(b *testing.B) {
		for b.Loop() {
			f.mu.Lock()
			clear(f.verified)
			f.mu.Unlock()
			if !f.Authenticate("alice", "alice-pass") {
				b.Fatal("refused")
			}
		}
	})
}
