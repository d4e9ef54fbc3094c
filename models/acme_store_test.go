package models_test

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
)

// TestACMEStore: values round-trip sealed, keys behave as certmagic's file storage (listing
// children or all below a prefix, a prefix is a non-terminal key, deleting a prefix deletes
// below it, missing keys are fs.ErrNotExist), and LIKE metacharacters in keys match only
// themselves.
func TestACMEStore(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		s := models.NewACMEStore(db)
		for k, v := range map[string]string{
			"certificates/ca/a.test/a.test.crt": "CERT", "certificates/ca/a.test/a.test.key": "-----BEGIN EC PRIVATE KEY----- secret",
			"certificates/ca/b_c.test/b_c.test.crt": "B", "certificates/ca/bxc.test/bxc.test.crt": "X", "acme/ca/users/x": "U",
		} {
			if err := s.Store(ctx, k, []byte(v)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Store(ctx, "certificates/ca/a.test/a.test.crt", []byte("CERT2")); err != nil {
			t.Fatal(err)
		}
		if b, err := s.Load(ctx, "certificates/ca/a.test/a.test.crt"); err != nil || string(b) != "CERT2" {
			t.Errorf("load after overwrite: %q, %v", b, err)
		}
		var raw []string
		db.Raw("SELECT value FROM acme_objects").Scan(&raw)
		for _, r := range raw {
			if strings.Contains(r, "PRIVATE") || !models.IsSealed(r) {
				t.Errorf("stored value %q is not sealed", r)
			}
		}
		if _, err := s.Load(ctx, "nope"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("load of a missing key: %v, want fs.ErrNotExist", err)
		}
		children, err := s.List(ctx, "certificates/ca", false)
		if want := []string{"certificates/ca/a.test", "certificates/ca/b_c.test", "certificates/ca/bxc.test"}; err != nil || !slices.Equal(children, want) {
			t.Errorf("children: %v, %v; want %v", children, err, want)
		}
		all, err := s.List(ctx, "certificates/ca/b_c.test", true)
		if err != nil || !slices.Equal(all, []string{"certificates/ca/b_c.test/b_c.test.crt"}) {
			t.Errorf("below b_c.test: %v, %v (an _ must not match any character)", all, err)
		}
		if _, err := s.List(ctx, "certificates/none", true); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("list of nothing: %v", err)
		}
		if _, size, terminal, err := s.Stat(ctx, "certificates/ca/a.test/a.test.crt"); err != nil || !terminal || size != 5 {
			t.Errorf("stat of a value: size %d terminal %v, %v", size, terminal, err)
		}
		if _, _, terminal, err := s.Stat(ctx, "certificates/ca/a.test"); err != nil || terminal {
			t.Errorf("stat of a prefix: terminal %v, %v", terminal, err)
		}
		if err := s.Delete(ctx, "certificates/ca/a.test"); err != nil {
			t.Fatal(err)
		}
		if s.Exists(ctx, "certificates/ca/a.test/a.test.key") || !s.Exists(ctx, "certificates/ca/bxc.test") {
			t.Error("delete of a prefix: wrong keys left")
		}
		if err := s.Delete(ctx, "never"); err != nil {
			t.Errorf("delete of a missing key: %v", err)
		}
	})
}

// TestACMELock: a lock held by one store (one process) makes another wait until it is
// released; a lock whose holder stopped renewing it lapses; unlocking a lock not held fails.
func TestACMELock(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		a, b := models.NewACMEStore(db), models.NewACMEStore(db)
		if err := a.Lock(ctx, "issue_cert_a.test"); err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, time.Second)
		err := b.Lock(short, "issue_cert_a.test")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("second holder while the first holds it: %v, want it still waiting when its context ended", err)
		}
		got := make(chan error, 1)
		go func() { got <- b.Lock(ctx, "issue_cert_a.test") }()
		if err := a.Unlock(ctx, "issue_cert_a.test"); err != nil {
			t.Fatal(err)
		}
		if err := <-got; err != nil {
			t.Fatalf("lock after release: %v", err)
		}
		if err := a.Unlock(ctx, "issue_cert_a.test"); err == nil {
			t.Error("a released a lock b holds")
		}
		if err := b.Unlock(ctx, "issue_cert_a.test"); err != nil {
			t.Fatal(err)
		}
		// A holder that died: its lock expired a minute ago.
		if err := db.Create(&models.ACMELock{Name: "dead", Owner: "gone", Expires: models.Now().Add(-time.Minute)}).Error; err != nil {
			t.Fatal(err)
		}
		if err := a.Lock(ctx, "dead"); err != nil {
			t.Fatalf("lock left by a dead holder: %v", err)
		}
		if err := a.Unlock(ctx, "dead"); err != nil {
			t.Fatal(err)
		}
	})
}
