package models

import (
	"errors"
	"time"

	"gorm.io/gorm"
)

// DefaultContentGuardName is the name of the content redirect guard pulp_container attaches to
// every container and pull-through distribution created through the API without one (its
// serializers' validate(): ContentRedirectContentGuardSerializer.get_or_create({"name":
// "content redirect"})); one guard per domain, shared by all of them.
const DefaultContentGuardName = "content redirect"

// ContentGuard is a content guard; the only kind here is pulpcore's
// ContentRedirectContentGuard (PulpType "core.content_redirect"). In Pulp it signs the URLs
// the registry redirects clients to on the content app; this server serves blobs itself and
// never redirects, so a guard has no effect here beyond being referenced (docs/api.md).
type ContentGuard struct {
	ID              string    `gorm:"primaryKey;size:36" json:"-"`
	PulpType        string    `gorm:"size:64;index;not null" json:"-"`
	PulpCreated     time.Time `json:"-"`
	PulpLastUpdated time.Time `json:"-"`
	Name            string    `gorm:"uniqueIndex;not null" json:"name"`
	Description     *string   `json:"description"`
}

// Href is g's pulp_href.
func (g *ContentGuard) Href() string { return KindContentRedirectGuard.Href(g.ID) }

// Serialize renders g as Pulp's ContentRedirectContentGuardResponse (the generic
// ContentGuardResponse has the same fields).
func (g *ContentGuard) Serialize(_ *gorm.DB, _ string) (map[string]any, error) {
	return map[string]any{
		"pulp_href":         g.Href(),
		"prn":               KindContentRedirectGuard.PRNOf(g.ID),
		"pulp_created":      FormatTime(g.PulpCreated),
		"pulp_last_updated": FormatTime(g.PulpLastUpdated),
		"name":              g.Name,
		"description":       strPtrAny(g.Description),
	}, nil
}

// EnsureDefaultContentGuard returns the id of the "content redirect" guard, creating it if
// needed, as pulp_container does on every distribution create or update that names no guard.
func EnsureDefaultContentGuard(tx *gorm.DB) (string, error) {
	var g ContentGuard
	err := tx.Take(&g, "name = ? AND pulp_type = ?", DefaultContentGuardName, KindContentRedirectGuard.PulpType).Error
	if err == nil {
		return g.ID, nil
	}
	if !errors.Is(err, gorm.ErrRecordNotFound) {
		return "", err
	}
	now := Now()
	g = ContentGuard{ID: NewID(), PulpType: KindContentRedirectGuard.PulpType, PulpCreated: now,
		PulpLastUpdated: now, Name: DefaultContentGuardName}
	// In a savepoint (inside a transaction), so that a duplicate does not abort PostgreSQL's
	// transaction and the guard a concurrent request just made can be read.
	if err := tx.Transaction(func(sp *gorm.DB) error { return sp.Create(&g).Error }); err != nil {
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			// Created by a concurrent request: use that one.
			if err := tx.Take(&g, "name = ?", DefaultContentGuardName).Error; err == nil {
				return g.ID, nil
			}
		}
		return "", err
	}
	return g.ID, nil
}

// DeleteContentGuard removes guard id; distributions that used it keep no guard (Pulp's
// Distribution.content_guard is on_delete=SET_NULL).
func DeleteContentGuard(tx *gorm.DB, id string) error {
	if err := tx.Model(&Distribution{}).Where("content_guard_id = ?", id).Update("content_guard_id", nil).Error; err != nil {
		return err
	}
	return tx.Delete(&ContentGuard{}, "id = ?", id).Error
}
