package models

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ACMEObject is one entry of the ACME certificate storage that content processes sharing the
// database share (the account, each certificate and its key, challenge data), by certmagic's
// slash-separated key. The value is sealed with the database encryption key.
type ACMEObject struct {
	Name     string `gorm:"primaryKey;type:varchar(1024)"`
	Value    string `gorm:"type:text;not null;serializer:encrypted"` // base64 of the bytes
	Size     int64
	Modified time.Time
}

// ACMELock is a lock of the ACME storage held by one process until Expires; its holder
// pushes Expires forward while it works, so a crashed holder's lock lapses.
type ACMELock struct {
	Name    string `gorm:"primaryKey;type:varchar(1024)"`
	Owner   string `gorm:"not null"`
	Expires time.Time
}

const (
	// acmeLockTTL is how long a lock outlives its last renewal by its holder.
	acmeLockTTL = 2 * time.Minute
	// acmeLockPoll is how often a waiting Lock tries again.
	acmeLockPoll = 500 * time.Millisecond
)

// ACMEStore is the ACME certificate storage in the database, with locks that work across
// processes on PostgreSQL and SQLite: the storage certmagic uses when several content
// processes share one database (acmecert adapts it).
type ACMEStore struct {
	db    *gorm.DB
	owner string // this store's name in the locks it holds

	mu   sync.Mutex
	held map[string]chan struct{} // lock name -> closed on Unlock, ending its renewal
}

// NewACMEStore returns the store of db.
func NewACMEStore(db *gorm.DB) *ACMEStore {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &ACMEStore{db: db, owner: ProcessName() + "/" + hex.EncodeToString(b), held: map[string]chan struct{}{}}
}

// errACMENotExist names the missing key; errors.Is(err, fs.ErrNotExist) holds.
func errACMENotExist(key string) error {
	return fmt.Errorf("ACME storage: %s: %w", key, fs.ErrNotExist)
}

// Store writes value under key.
func (s *ACMEStore) Store(ctx context.Context, key string, value []byte) error {
	o := ACMEObject{Name: key, Value: base64.StdEncoding.EncodeToString(value), Size: int64(len(value)), Modified: Now()}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "name"}},
		DoUpdates: clause.AssignmentColumns([]string{"value", "size", "modified"})}).Create(&o).Error
	if err != nil {
		return fmt.Errorf("ACME storage: store %s: %w", key, err)
	}
	return nil
}

// Load reads the value of key; a missing key is an fs.ErrNotExist.
func (s *ACMEStore) Load(ctx context.Context, key string) ([]byte, error) {
	var o ACMEObject
	if err := s.db.WithContext(ctx).Take(&o, "name = ?", key).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, errACMENotExist(key)
		}
		return nil, fmt.Errorf("ACME storage: load %s: %w", key, err)
	}
	b, err := base64.StdEncoding.DecodeString(o.Value)
	if err != nil {
		return nil, fmt.Errorf("ACME storage: load %s: %w", key, err)
	}
	return b, nil
}

// under selects the keys below prefix (prefix/...).
func under(db *gorm.DB, prefix string) *gorm.DB {
	esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.TrimSuffix(prefix, "/"))
	return db.Where(`name LIKE ? ESCAPE '\'`, esc+"/%")
}

// Delete removes key and every key below it; a missing key is no error.
func (s *ACMEStore) Delete(ctx context.Context, key string) error {
	db := s.db.WithContext(ctx)
	if err := db.Where("name = ?", key).Or(under(s.db, key)).Delete(&ACMEObject{}).Error; err != nil {
		return fmt.Errorf("ACME storage: delete %s: %w", key, err)
	}
	return nil
}

// Exists reports whether key or a key below it exists.
func (s *ACMEStore) Exists(ctx context.Context, key string) bool {
	_, _, _, err := s.Stat(ctx, key)
	return err == nil
}

// List returns the keys below prefix: all of them when recursive, otherwise its immediate
// children (prefix/child); none is an fs.ErrNotExist.
func (s *ACMEStore) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	var names []string
	if err := under(s.db.WithContext(ctx).Model(&ACMEObject{}), prefix).Pluck("name", &names).Error; err != nil {
		return nil, fmt.Errorf("ACME storage: list %s: %w", prefix, err)
	}
	if len(names) == 0 {
		return nil, errACMENotExist(prefix)
	}
	if recursive {
		sort.Strings(names)
		return names, nil
	}
	base := strings.TrimSuffix(prefix, "/") + "/"
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		child, _, _ := strings.Cut(strings.TrimPrefix(n, base), "/")
		if !seen[child] {
			seen[child] = true
			out = append(out, base+child)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Stat describes key: a value (terminal) or a prefix of others; neither is an fs.ErrNotExist.
func (s *ACMEStore) Stat(ctx context.Context, key string) (modified time.Time, size int64, terminal bool, err error) {
	var o ACMEObject
	err = s.db.WithContext(ctx).Select("name", "size", "modified").Take(&o, "name = ?", key).Error
	if err == nil {
		return o.Modified, o.Size, true, nil
	}
	if !errors.Is(err, gorm.ErrRecordNotFound) {
		return time.Time{}, 0, false, fmt.Errorf("ACME storage: stat %s: %w", key, err)
	}
	var n int64
	if err := under(s.db.WithContext(ctx).Model(&ACMEObject{}), key).Count(&n).Error; err != nil {
		return time.Time{}, 0, false, fmt.Errorf("ACME storage: stat %s: %w", key, err)
	}
	if n == 0 {
		return time.Time{}, 0, false, errACMENotExist(key)
	}
	return time.Time{}, 0, false, nil
}

// Lock takes the lock name, waiting while another holder (in any process sharing the
// database, or in this one) has it, until ctx ends. A lock whose holder stopped renewing it
// lapses after acmeLockTTL.
func (s *ACMEStore) Lock(ctx context.Context, name string) error {
	db := s.db.WithContext(ctx)
	for {
		now := Now()
		if err := db.Where("name = ? AND expires < ?", name, now).Delete(&ACMELock{}).Error; err != nil {
			return fmt.Errorf("ACME storage: lock %s: %w", name, err)
		}
		res := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&ACMELock{Name: name, Owner: s.owner, Expires: now.Add(acmeLockTTL)})
		if res.Error != nil {
			return fmt.Errorf("ACME storage: lock %s: %w", name, res.Error)
		}
		if res.RowsAffected == 1 {
			done := make(chan struct{})
			s.mu.Lock()
			s.held[name] = done
			s.mu.Unlock()
			go s.keepLock(name, done)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ACME storage: lock %s: %w", name, ctx.Err())
		case <-time.After(acmeLockPoll):
		}
	}
}

// keepLock pushes the expiry of the lock name forward until done is closed.
func (s *ACMEStore) keepLock(name string, done chan struct{}) {
	t := time.NewTicker(acmeLockTTL / 4)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			s.db.Model(&ACMELock{}).Where("name = ? AND owner = ?", name, s.owner).Update("expires", Now().Add(acmeLockTTL))
		}
	}
}

// Unlock releases the lock name this store holds.
func (s *ACMEStore) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	done, ok := s.held[name]
	delete(s.held, name)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("ACME storage: unlock %s: not held by this process", name)
	}
	close(done)
	if err := s.db.WithContext(ctx).Where("name = ? AND owner = ?", name, s.owner).Delete(&ACMELock{}).Error; err != nil {
		return fmt.Errorf("ACME storage: unlock %s: %w", name, err)
	}
	return nil
}
