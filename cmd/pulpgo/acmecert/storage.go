package acmecert

import (
	"context"
	"time"

	"github.com/caddyserver/certmagic"
)

// Objects is a store of named values with locks that hold across processes, such as
// models.ACMEStore in the database: the storage of content processes that share one account
// and one certificate. Missing keys are fs.ErrNotExist, as certmagic expects.
type Objects interface {
	Store(ctx context.Context, key string, value []byte) error
	Load(ctx context.Context, key string) ([]byte, error)
	Delete(ctx context.Context, key string) error
	Exists(ctx context.Context, key string) bool
	List(ctx context.Context, prefix string, recursive bool) ([]string, error)
	Stat(ctx context.Context, key string) (modified time.Time, size int64, terminal bool, err error)
	Lock(ctx context.Context, name string) error
	Unlock(ctx context.Context, name string) error
}

// objectStorage is certmagic's Storage over Objects.
type objectStorage struct{ Objects }

var _ certmagic.Storage = objectStorage{}

// Stat describes key in certmagic's terms.
func (s objectStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	modified, size, terminal, err := s.Objects.Stat(ctx, key)
	if err != nil {
		return certmagic.KeyInfo{}, err
	}
	return certmagic.KeyInfo{Key: key, Modified: modified, Size: size, IsTerminal: terminal}, nil
}
