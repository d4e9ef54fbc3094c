package models

import (
	"time"

	"gorm.io/gorm"
)

// Namespace groups distributions by the first segment of their base path.
type Namespace struct {
	ID              string    `gorm:"primaryKey;size:36" json:"-"`
	PulpCreated     time.Time `json:"-"`
	PulpLastUpdated time.Time `json:"-"`
	Name            string    `gorm:"uniqueIndex;not null" json:"name"`
	PulpLabels      Labels    `gorm:"type:text" json:"pulp_labels"`
}

// Href is n's pulp_href.
func (n *Namespace) Href() string { return KindNamespace.Href(n.ID) }

// Serialize renders n as Pulp's response object.
func (n *Namespace) Serialize(_ *gorm.DB, _ string) (map[string]any, error) {
	return map[string]any{
		"pulp_href":         n.Href(),
		"prn":               KindNamespace.PRNOf(n.ID),
		"pulp_created":      FormatTime(n.PulpCreated),
		"pulp_last_updated": FormatTime(n.PulpLastUpdated),
		"name":              n.Name,
		"pulp_labels":       labelsAny(n.PulpLabels),
	}, nil
}

// DeleteNamespace removes n and every distribution in it (with their repositories, as
// DeleteDistribution does).
func DeleteNamespace(tx *gorm.DB, id string) error {
	var ds []Distribution
	if err := tx.Where("namespace_id = ?", id).Find(&ds).Error; err != nil {
		return err
	}
	for i := range ds {
		if err := DeleteDistribution(tx, &ds[i]); err != nil {
			return err
		}
	}
	return tx.Delete(&Namespace{}, "id = ?", id).Error
}
