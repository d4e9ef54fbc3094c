package models

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// TokenKey is the single row (ID 1) holding the private key that signs the registry's bearer
// tokens, so that every content process sharing the database signs and verifies with the
// same key. The key (PEM) is sealed with the database encryption key like remote secrets.
type TokenKey struct {
	ID          int    `gorm:"primaryKey;autoIncrement:false"`
	PrivateKey  string `gorm:"type:text;not null;serializer:encrypted"`
	PulpCreated time.Time
}

// EnsureTokenKey returns the token signing key stored in db, storing candidate first when
// there is none. Processes starting at once may each offer a candidate: the first stored
// wins and every one of them gets it.
func EnsureTokenKey(ctx context.Context, db *gorm.DB, candidate []byte) ([]byte, error) {
	db = db.WithContext(ctx)
	var k TokenKey
	err := db.Take(&k, "id = ?", 1).Error
	if err == nil {
		return []byte(k.PrivateKey), nil
	}
	if !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("read the token signing key: %w", err)
	}
	row := TokenKey{ID: 1, PrivateKey: string(candidate), PulpCreated: Now()}
	if err := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error; err != nil {
		return nil, fmt.Errorf("store the token signing key: %w", err)
	}
	if err := db.Take(&k, "id = ?", 1).Error; err != nil {
		return nil, fmt.Errorf("read the token signing key: %w", err)
	}
	return []byte(k.PrivateKey), nil
}
