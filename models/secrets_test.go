package models_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
)

// secretFields are the remote fields Pulp encrypts, with a distinct plaintext each.
var secretFields = map[string]string{
	"username":       "user-Zq81",
	"password":       "pass-Zq82",
	"proxy_username": "proxyuser-Zq83",
	"proxy_password": "proxypass-Zq84",
	"client_key":     "-----BEGIN PRIVATE KEY-----Zq85",
}

func newKey(t *testing.T) *models.Key {
	t.Helper()
	raw := make([]byte, models.KeySize)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	k, err := models.NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rawColumn reads a column of one row as stored, bypassing the models.
func rawColumn(t *testing.T, db *gorm.DB, table, column, id string) *string {
	t.Helper()
	var v *string
	if err := db.Table(table).Select(column).Where("id = ?", id).Row().Scan(&v); err != nil {
		t.Fatalf("read %s.%s of %s: %v", table, column, id, err)
	}
	return v
}

// assertSealed fails unless the stored value is sealed and does not contain plain.
func assertSealed(t *testing.T, what string, stored *string, plain string) {
	t.Helper()
	if stored == nil {
		t.Errorf("%s: NULL, want a sealed value", what)
		return
	}
	if strings.Contains(*stored, plain) {
		t.Errorf("%s is stored in plaintext: %q", what, *stored)
	}
	if !models.IsSealed(*stored) {
		t.Errorf("%s: %q is not sealed", what, *stored)
	}
}

func createRemote(t *testing.T, db *gorm.DB, name string, values map[string]string) *models.Remote {
	t.Helper()
	in := map[string]any{"name": name, "url": "https://registry.example", "policy": "on_demand", "tls_validation": true}
	for k, v := range values {
		in[k] = v
	}
	b, _ := json.Marshal(in)
	obj, err := models.Create(db, models.KindPullThroughRemote, b)
	if err != nil {
		t.Fatalf("create remote %s: %v", name, err)
	}
	return obj.(*models.Remote)
}

// TestRemoteSecretsSealedAtRest stores a remote with every secret field set and reads the
// columns as stored: none holds its plaintext, while the model reads it back whole, after a
// create and after an update.
func TestRemoteSecretsSealedAtRest(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		r := createRemote(t, db, "hub", secretFields)
		for col, plain := range secretFields {
			assertSealed(t, "remotes."+col, rawColumn(t, db, "remotes", col, r.ID), plain)
		}
		check := func(want map[string]string) {
			t.Helper()
			obj, err := models.Get(db, models.KindPullThroughRemote, r.ID)
			if err != nil {
				t.Fatalf("read remote: %v", err)
			}
			got := obj.(*models.Remote)
			have := map[string]*string{"username": got.Username, "password": got.Password,
				"proxy_username": got.ProxyUsername, "proxy_password": got.ProxyPassword, "client_key": got.ClientKey}
			for col, plain := range want {
				if have[col] == nil || *have[col] != plain {
					t.Errorf("remote %s reads %v, want %q", col, have[col], plain)
				}
			}
		}
		check(secretFields)

		if _, err := models.Update(db, models.KindPullThroughRemote, r.ID, json.RawMessage(`{"password":"new-Zq86","username":null}`)); err != nil {
			t.Fatalf("update: %v", err)
		}
		assertSealed(t, "remotes.password after an update", rawColumn(t, db, "remotes", "password", r.ID), "new-Zq86")
		if v := rawColumn(t, db, "remotes", "username", r.ID); v != nil {
			t.Errorf("username set to null is stored as %q, want NULL", *v)
		}
		check(map[string]string{"password": "new-Zq86", "proxy_password": secretFields["proxy_password"]})

		// Two seals of one plaintext differ (a fresh nonce each).
		r2 := createRemote(t, db, "hub2", map[string]string{"password": secretFields["password"]})
		if a, b := rawColumn(t, db, "remotes", "password", r2.ID), rawColumn(t, db, "remotes", "password", r.ID); *a == *b {
			t.Errorf("two remotes' sealed passwords are equal: %q", *a)
		}
	})
}

// TestTaskArgsSealedAtRest stores a task whose arguments carry a password (as an update of a
// remote does): the stored row does not contain it, the task read back does.
func TestTaskArgsSealedAtRest(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		args := map[string]any{"kind": "ContainerPullThroughRemote", "id": models.NewID(),
			"values": map[string]any{"password": "taskpass-Zq87"}}
		task, err := models.CreateTask(db, models.NewTask{Name: "update", Args: args})
		if err != nil {
			t.Fatal(err)
		}
		assertSealed(t, "tasks.args", rawColumn(t, db, "tasks", "args", task.ID), "taskpass-Zq87")
		got, err := models.GetTask(db, task.ID)
		if err != nil {
			t.Fatal(err)
		}
		jsonEq(t, json.RawMessage(got.Args), string(models.MustJSON(args)))

		nilArgs, err := models.CreateTask(db, models.NewTask{Name: "no args"})
		if err != nil {
			t.Fatal(err)
		}
		if v := rawColumn(t, db, "tasks", "args", nilArgs.ID); v != nil {
			t.Errorf("a task without arguments stores %q, want NULL", *v)
		}
	})
}

// TestMigrateSealsPlaintext stores a remote and a task the way versions before encryption did
// (plaintext): they still read, and the next Migrate seals them.
func TestMigrateSealsPlaintext(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		now := models.Now()
		id, taskID := models.NewID(), models.NewID()
		if err := db.Exec(`INSERT INTO remotes (id, pulp_type, pulp_created, pulp_last_updated, name, url, pulp_labels,
			tls_validation, username, password, proxy_password) VALUES (?, ?, ?, ?, 'old', 'https://r.example', '{}', ?, ?, ?, ?)`,
			id, models.KindContainerRemote.PulpType, now, now, true, "olduser-Zq88", "oldpass-Zq89", "").Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Exec(`INSERT INTO tasks (id, pulp_created, pulp_last_updated, state, name, args) VALUES (?, ?, ?, 'completed', 'old', ?)`,
			taskID, now, now, `{"values":{"password":"oldpass-Zq89"}}`).Error; err != nil {
			t.Fatal(err)
		}
		obj, err := models.Get(db, models.KindContainerRemote, id)
		if err != nil {
			t.Fatalf("read a plaintext remote: %v", err)
		}
		if r := obj.(*models.Remote); r.Password == nil || *r.Password != "oldpass-Zq89" {
			t.Errorf("plaintext password reads %v", r.Password)
		}

		if err := models.Migrate(db); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		assertSealed(t, "remotes.username", rawColumn(t, db, "remotes", "username", id), "olduser-Zq88")
		assertSealed(t, "remotes.password", rawColumn(t, db, "remotes", "password", id), "oldpass-Zq89")
		assertSealed(t, "remotes.proxy_password (empty)", rawColumn(t, db, "remotes", "proxy_password", id), "\x00")
		if v := rawColumn(t, db, "remotes", "client_key", id); v != nil {
			t.Errorf("NULL client_key became %q", *v)
		}
		assertSealed(t, "tasks.args", rawColumn(t, db, "tasks", "args", taskID), "oldpass-Zq89")

		obj, err = models.Get(db, models.KindContainerRemote, id)
		if err != nil {
			t.Fatal(err)
		}
		r := obj.(*models.Remote)
		if r.Password == nil || *r.Password != "oldpass-Zq89" || r.Username == nil || *r.Username != "olduser-Zq88" ||
			r.ProxyPassword == nil || *r.ProxyPassword != "" || r.ClientKey != nil {
			t.Errorf("after sealing the remote reads username %v password %v proxy_password %v client_key %v",
				r.Username, r.Password, r.ProxyPassword, r.ClientKey)
		}
		task, err := models.GetTask(db, taskID)
		if err != nil {
			t.Fatal(err)
		}
		jsonEq(t, json.RawMessage(task.Args), `{"values":{"password":"oldpass-Zq89"}}`)

		// Sealed values are left alone by the next start.
		before := rawColumn(t, db, "remotes", "password", id)
		if err := models.Migrate(db); err != nil {
			t.Fatal(err)
		}
		if after := rawColumn(t, db, "remotes", "password", id); *after != *before {
			t.Errorf("a second migrate sealed the password again")
		}
	})
}

// TestWrongKey gives a database sealed under one key another key: the start refuses it, and
// a secret sealed under another key reads as an error naming the column and both keys.
func TestWrongKey(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		other := newKey(t)
		r := createRemote(t, db, "hub", map[string]string{"password": "p"})
		if err := db.Exec("UPDATE remotes SET password = ? WHERE id = ?", other.Seal([]byte("p")), r.ID).Error; err != nil {
			t.Fatal(err)
		}
		_, err := models.Get(db, models.KindPullThroughRemote, r.ID)
		if !errors.Is(err, models.ErrWrongKey) || !strings.Contains(err.Error(), "remotes.password") ||
			!strings.Contains(err.Error(), other.ID()) || !strings.Contains(err.Error(), models.EncryptionKey().ID()) {
			t.Errorf("reading a password sealed under another key: %v; want ErrWrongKey naming remotes.password and both keys", err)
		}

		if err := db.Exec("UPDATE encryption_key_checks SET key_id = ?, sealed = ?", other.ID(), other.Seal([]byte("x"))).Error; err != nil {
			t.Fatal(err)
		}
		err = models.Migrate(db)
		if err == nil || !strings.Contains(err.Error(), "same --db-encryption-key") || !strings.Contains(err.Error(), other.ID()) {
			t.Errorf("migrate with another key than the database's: %v; want a refusal naming the key", err)
		}
	})
}

func TestKeyOpenRejects(t *testing.T) {
	k, other := newKey(t), newKey(t)
	sealed := k.Seal([]byte("secret"))
	if b, err := k.Open(sealed); err != nil || string(b) != "secret" {
		t.Fatalf("open: %q %v", b, err)
	}
	if _, err := other.Open(sealed); !errors.Is(err, models.ErrWrongKey) {
		t.Errorf("open under another key: %v, want ErrWrongKey", err)
	}
	// A flipped byte of the ciphertext fails authentication.
	i := len(sealed) - 3
	flip := byte('A')
	if sealed[i] == 'A' {
		flip = 'B'
	}
	if _, err := k.Open(sealed[:i] + string(flip) + sealed[i+1:]); err == nil || !strings.Contains(err.Error(), "authentication") {
		t.Errorf("open a tampered value: %v, want an authentication failure", err)
	}
	if _, err := k.Open("secret"); err == nil {
		t.Error("open of plaintext succeeded")
	}
}

func TestParseKey(t *testing.T) {
	raw := make([]byte, models.KeySize)
	for i := range raw {
		raw[i] = byte(250 + i) // bytes whose base64 uses + and / (or - and _)
	}
	want, _ := models.NewKey(raw)
	for _, text := range []string{
		base64.StdEncoding.EncodeToString(raw), base64.URLEncoding.EncodeToString(raw) + "\n",
		base64.RawStdEncoding.EncodeToString(raw), "  " + base64.RawURLEncoding.EncodeToString(raw) + "\r\n",
	} {
		k, err := models.ParseKey([]byte(text))
		if err != nil || k.ID() != want.ID() {
			t.Errorf("ParseKey(%q): %v, %v", text, k, err)
		}
	}
	short := base64.StdEncoding.EncodeToString(raw[:16])
	for _, text := range []string{"", "not base64!", short, short + "\n" + short} {
		if _, err := models.ParseKey([]byte(text)); err == nil {
			t.Errorf("ParseKey(%q) accepted", text)
		}
	}
}

// TestEnsureKeyFile creates the key file once, mode 0600, and loads it on the next call.
func TestEnsureKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), models.KeyFileName)
	k1, created, err := models.EnsureKeyFile(path)
	if err != nil || !created {
		t.Fatalf("first EnsureKeyFile: created %v, %v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	k2, created, err := models.EnsureKeyFile(path)
	if err != nil || created || k2.ID() != k1.ID() {
		t.Errorf("second EnsureKeyFile: created %v, key %s (first %s), %v", created, k2.ID(), k1.ID(), err)
	}
	k3, err := models.LoadKeyFile(path)
	if err != nil || k3.ID() != k1.ID() {
		t.Errorf("LoadKeyFile: %v %v", k3, err)
	}
	if err := os.WriteFile(path, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := models.EnsureKeyFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("EnsureKeyFile of a bad file: %v, want an error naming it", err)
	}
}

// TestEnsureKeyFileRace: processes starting at once with no key file agree on one key.
func TestEnsureKeyFileRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), models.KeyFileName)
	const n = 8
	ids := make(chan string, n)
	createdN := make(chan bool, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, created, err := models.EnsureKeyFile(path)
			if err != nil {
				t.Error(err)
				return
			}
			ids <- k.ID()
			createdN <- created
		}()
	}
	wg.Wait()
	close(ids)
	close(createdN)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	creators := 0
	for c := range createdN {
		if c {
			creators++
		}
	}
	if len(seen) != 1 || creators != 1 {
		t.Errorf("%d keys, %d creators; want 1 and 1", len(seen), creators)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}
