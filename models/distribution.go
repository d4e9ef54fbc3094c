package models

import (
	"errors"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
)

// Distribution serves a repository (its latest version, or a pinned one) at a base path of the
// registry: a container distribution, or a pull-through distribution (PulpType tells which)
// whose children (PullThroughID) the cache creates per pulled image.
type Distribution struct {
	ID              string    `gorm:"primaryKey;size:36" json:"-"`
	PulpType        string    `gorm:"size:64;index;not null" json:"-"`
	PulpCreated     time.Time `json:"-"`
	PulpLastUpdated time.Time `json:"-"`

	Name                string  `gorm:"uniqueIndex;not null" json:"name"`
	BasePath            string  `gorm:"uniqueIndex;not null" json:"base_path"`
	RepositoryID        *string `gorm:"size:36;index" json:"repository_id"`
	RepositoryVersionID *string `gorm:"size:36;index" json:"repository_version_id"`
	RemoteID            *string `gorm:"size:36;index" json:"remote_id"`
	PulpLabels          Labels  `gorm:"type:text" json:"pulp_labels"`
	Private             bool    `gorm:"not null;default:false" json:"private"`
	Hidden              bool    `gorm:"not null;default:false" json:"hidden"`
	Description         *string `json:"description"`
	NamespaceID         *string `gorm:"size:36;index" json:"-"`
	PullThroughID       *string `gorm:"size:36;index" json:"-"`
	// ContentGuardID is the content redirect guard (nil for the children the pull-through
	// cache creates, as in Pulp, until an API update gives them the default one).
	ContentGuardID *string `gorm:"size:36;index" json:"content_guard_id"`
}

// Kind returns the API kind of d.
func (d *Distribution) Kind() Kind {
	if d.PulpType == KindPullThroughDist.PulpType {
		return KindPullThroughDist
	}
	return KindContainerDistribution
}

// Href is d's pulp_href.
func (d *Distribution) Href() string { return d.Kind().Href(d.ID) }

// contentOrigin is Pulp's CONTENT_ORIGIN (https://host:port), "" when unset.
var contentOrigin atomic.Value

// SetContentOrigin sets Pulp's CONTENT_ORIGIN, a URL like https://h:443, whose host prefixes
// registry_path where there is no request host (task results).
func SetContentOrigin(origin string) { contentOrigin.Store(origin) }

// ContentOrigin returns what SetContentOrigin set.
func ContentOrigin() string {
	o, _ := contentOrigin.Load().(string)
	return o
}

// ContentOriginHost returns the host (and port) of the content origin, "" when unset.
func ContentOriginHost() string {
	_, rest, ok := strings.Cut(ContentOrigin(), "://")
	if !ok {
		return ""
	}
	host, _, _ := strings.Cut(rest, "/")
	return host
}

// noContentChangeSince is Pulp's no_content_change_since: a distribution of a fixed repository
// version serves the same content since it was last updated; one of a repository (its latest
// version) or of nothing gives no such guarantee (null).
func noContentChangeSince(d *Distribution) any {
	if d.RepositoryVersionID != nil {
		return FormatTime(d.PulpLastUpdated)
	}
	return nil
}

// Serialize renders d as Pulp's response object; host (the request's Host header) prefixes
// registry_path; without a request (task results) the content origin's host does, else
// registry_path is the bare base path.
func (d *Distribution) Serialize(db *gorm.DB, host string) (map[string]any, error) {
	if host == "" {
		host = ContentOriginHost()
	}
	k := d.Kind()
	m := map[string]any{
		"pulp_href":               d.Href(),
		"prn":                     k.PRNOf(d.ID),
		"pulp_created":            FormatTime(d.PulpCreated),
		"pulp_last_updated":       FormatTime(d.PulpLastUpdated),
		"name":                    d.Name,
		"base_path":               d.BasePath,
		"pulp_labels":             labelsAny(d.PulpLabels),
		"content_guard":           nil,
		"content_guard_prn":       nil,
		"no_content_change_since": noContentChangeSince(d),
		"hidden":                  d.Hidden,
		"private":                 d.Private,
		"description":             strPtrAny(d.Description),
		"repository":              nil,
		"repository_version":      nil,
		"remote":                  nil,
		"namespace":               nil,
	}
	if d.ContentGuardID != nil {
		m["content_guard"] = KindContentRedirectGuard.Href(*d.ContentGuardID)
		m["content_guard_prn"] = KindContentRedirectGuard.PRNOf(*d.ContentGuardID)
	}
	if d.NamespaceID != nil {
		m["namespace"] = KindNamespace.Href(*d.NamespaceID)
	}
	if d.RepositoryID != nil {
		var r Repository
		if err := db.Select("id", "pulp_type").Take(&r, "id = ?", *d.RepositoryID).Error; err == nil {
			m["repository"] = r.Href()
		}
	}
	if d.RepositoryVersionID != nil {
		var v RepositoryVersion
		if err := db.Take(&v, "id = ?", *d.RepositoryVersionID).Error; err == nil {
			var r Repository
			if err := db.Select("id", "pulp_type").Take(&r, "id = ?", v.RepositoryID).Error; err == nil {
				m["repository_version"] = r.VersionHref(v.Number)
			}
		}
	}
	if d.RemoteID != nil {
		var r Remote
		if err := db.Select("id", "pulp_type").Take(&r, "id = ?", *d.RemoteID).Error; err == nil {
			m["remote"] = r.Href()
		}
	}
	if k == KindPullThroughDist {
		var children []Distribution
		if err := db.Select("id", "pulp_type").Where("pull_through_id = ?", d.ID).Order("id").Find(&children).Error; err != nil {
			return nil, err
		}
		hrefs := make([]string, 0, len(children))
		for _, c := range children {
			hrefs = append(hrefs, c.Href())
		}
		m["distributions"] = hrefs
	} else {
		if host != "" {
			m["registry_path"] = host + "/" + d.BasePath
		} else {
			m["registry_path"] = d.BasePath
		}
	}
	return m, nil
}

var basePathSegment = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$`)

// ValidContainerBasePath applies pulp_container's rule to a container distribution's base path.
func ValidContainerBasePath(p string) bool {
	if p == "" || len(p) > 255 {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if !basePathSegment.MatchString(seg) {
			return false
		}
	}
	return true
}

// ValidRelativePath applies pulpcore's rule for any base path: relative, canonical, no empty,
// "." or ".." segments and no characters that cannot appear in a URL path.
func ValidRelativePath(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || len(p) > 255 {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for _, r := range seg {
			if r <= ' ' || r == 0x7f || strings.ContainsRune(`?#%\"<>`, r) {
				return false
			}
		}
	}
	return true
}

// OverlappingDistribution returns the name of a distribution whose base path equals p, is a
// prefix of p, or has p as a prefix (whole segments), other than the one with id exceptID and
// the children the cache made below it.
func OverlappingDistribution(db *gorm.DB, p, exceptID string) (string, error) {
	var ds []Distribution
	q := db.Select("id", "name", "base_path").Where("id <> ?", exceptID).
		Where("pull_through_id IS NULL OR pull_through_id <> ?", exceptID)
	if prefixes := parentPaths(p); len(prefixes) > 0 {
		q = q.Where("base_path = ? OR base_path LIKE ? ESCAPE '\\' OR base_path IN ?", p, likeEscape(p)+"/%", prefixes)
	} else {
		q = q.Where("base_path = ? OR base_path LIKE ? ESCAPE '\\'", p, likeEscape(p)+"/%")
	}
	if err := q.Limit(1).Find(&ds).Error; err != nil {
		return "", err
	}
	if len(ds) == 0 {
		return "", nil
	}
	return ds[0].Name, nil
}

// PullThroughAbove returns the name of the pull-through distribution whose base path is p or
// an ancestor of p, when a container distribution other than the one with id exceptID ("" on
// create) may not take base path p: only the cache creates distributions below a pull-through
// distribution. A distribution that keeps its base path is never refused.
func PullThroughAbove(db *gorm.DB, p, exceptID string) (string, error) {
	if exceptID != "" {
		var d Distribution
		err := db.Select("id", "base_path").Take(&d, "id = ?", exceptID).Error
		if err == nil && d.BasePath == p {
			return "", nil
		}
		if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
			return "", err
		}
	}
	var pts []Distribution
	err := db.Select("id", "name", "base_path").Where("pulp_type = ? AND base_path IN ?", KindPullThroughDist.PulpType,
		append(parentPaths(p), p)).Order("base_path").Limit(1).Find(&pts).Error
	if err != nil || len(pts) == 0 {
		return "", err
	}
	return pts[0].Name, nil
}

// parentPaths returns the ancestors of base path p, shortest first: "a" and "a/b" for "a/b/c".
func parentPaths(p string) []string {
	segs := strings.Split(p, "/")
	out := make([]string, 0, len(segs)-1)
	for i := 1; i < len(segs); i++ {
		out = append(out, strings.Join(segs[:i], "/"))
	}
	return out
}

// EnsureNamespace returns the id of the namespace named after the first segment of basePath,
// creating it if needed, as pulp_container does for every distribution.
func EnsureNamespace(tx *gorm.DB, basePath string) (string, error) {
	name := strings.SplitN(basePath, "/", 2)[0]
	var ns Namespace
	err := tx.Take(&ns, "name = ?", name).Error
	if err == nil {
		return ns.ID, nil
	}
	if !errors.Is(err, gorm.ErrRecordNotFound) {
		return "", err
	}
	now := Now()
	ns = Namespace{ID: NewID(), Name: name, PulpLabels: Labels{}, PulpCreated: now, PulpLastUpdated: now}
	if err := tx.Create(&ns).Error; err != nil {
		return "", err
	}
	return ns.ID, nil
}

// DeleteDistribution removes d. A pull-through distribution takes its children with it (their
// repositories and remotes stay, as in Pulp). A container distribution also removes its
// repository when that repository is a push repository or is served by no other distribution,
// as pulp_container 2.29 does.
func DeleteDistribution(tx *gorm.DB, d *Distribution) error {
	if d.Kind() == KindPullThroughDist {
		if err := tx.Where("pull_through_id = ?", d.ID).Delete(&Distribution{}).Error; err != nil {
			return err
		}
		return tx.Delete(&Distribution{}, "id = ?", d.ID).Error
	}
	if err := tx.Delete(&Distribution{}, "id = ?", d.ID).Error; err != nil {
		return err
	}
	if d.RepositoryID == nil {
		return nil
	}
	var others int64
	if err := tx.Model(&Distribution{}).Where("repository_id = ?", *d.RepositoryID).Count(&others).Error; err != nil {
		return err
	}
	if others > 0 {
		return nil
	}
	if err := DeleteRepository(tx, *d.RepositoryID); err != nil && !IsNotFound(err) {
		return err
	}
	return nil
}

func likeEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}
