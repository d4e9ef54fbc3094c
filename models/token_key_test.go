package models_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
)

// TestTokenKeyStoredOnce stores the token signing key once, sealed: the first candidate
// wins, later (and concurrent) callers get it, and the row holds no plaintext PEM.
func TestTokenKeyStoredOnce(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		const n = 8
		got := make([][]byte, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[i], errs[i] = models.EnsureTokenKey(ctx, db, []byte(fmt.Sprintf("-----BEGIN PRIVATE KEY-----\ncandidate %d\n", i)))
			}()
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if string(got[i]) != string(got[0]) {
				t.Fatalf("caller %d got %q, caller 0 got %q: two keys", i, got[i], got[0])
			}
		}
		again, err := models.EnsureTokenKey(ctx, db, []byte("a later candidate"))
		if err != nil || string(again) != string(got[0]) {
			t.Fatalf("later call: %q, %v; want the stored %q", again, err, got[0])
		}
		assertSealed(t, "token_keys.private_key", rawColumn(t, db, "token_keys", "private_key", "1"), "BEGIN PRIVATE KEY")
	})
}
