package models

import (
	"errors"
	"fmt"
	"sort"

	"gorm.io/gorm"
)

// This file holds the recursive content operations of container repositories, as
// pulp_container performs them: add and remove follow the links tag → manifest, index →
// listed manifests and manifest → config and layer blobs; a tag name appears at most once per
// version. Every operation makes at most one new version (none when nothing changes).

// inChunk bounds the ids bound into one IN (...) list, well below the parameter limits of
// SQLite and PostgreSQL.
const inChunk = 500

// inChunks calls fn on successive slices of ids of at most inChunk ids.
func inChunks(ids []string, fn func(part []string) error) error {
	for len(ids) > 0 {
		n := min(len(ids), inChunk)
		if err := fn(ids[:n]); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// ErrDuplicateTags is returned when a new version would hold two tags with one name.
var ErrDuplicateTags = errors.New("duplicate tag names in repository version")

// WritableCheck returns ErrReadOnly for the repositories only the pull-through cache may
// change, and nil for every other repository.
func (r *Repository) WritableCheck() error {
	if r.PullThrough {
		return ErrReadOnly
	}
	return nil
}

// VersionLabel is how Pulp names version n of repo in messages: "<Repository: r; Version: 0>".
func VersionLabel(repo *Repository, n int64) string {
	return fmt.Sprintf("<Repository: %s; Version: %d>", repo.Name, n)
}

// FindContent returns the pulp_type of every id in ids that names a blob, a manifest or a tag;
// ids of nothing are absent from the map.
func FindContent(db *gorm.DB, ids []string) (map[string]string, error) {
	out := map[string]string{}
	tables := []struct {
		model any
		typ   string
	}{{&Blob{}, KindBlob.PulpType}, {&Manifest{}, KindManifest.PulpType}, {&Tag{}, KindTag.PulpType}}
	err := inChunks(ids, func(part []string) error {
		for _, t := range tables {
			var found []string
			if err := db.Model(t.model).Where("id IN ?", part).Pluck("id", &found).Error; err != nil {
				return err
			}
			for _, id := range found {
				out[id] = t.typ
			}
		}
		return nil
	})
	return out, err
}

// presentIDs is the subquery of the ids of the units in version n of repo.
func presentIDs(db *gorm.DB, repoID string, n int64) *gorm.DB {
	return PresentIn(db.Model(&RepositoryContent{}).Select("content_id"), repoID, n)
}

// ManifestInVersion returns the manifest with digest in version n of repo, or a
// *NotFoundError.
func ManifestInVersion(db *gorm.DB, repo *Repository, n int64, digest string) (*Manifest, error) {
	var m Manifest
	err := db.Where("digest = ? AND id IN (?)", digest, presentIDs(db, repo.ID, n)).Take(&m).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, &NotFoundError{Model: "Manifest", Ref: digest}
	}
	return &m, err
}

// TagIDsInVersion returns the ids of the tags in version n of repo, all of them when names
// is nil, else those named in names.
func TagIDsInVersion(db *gorm.DB, repo *Repository, n int64, names []string) ([]string, error) {
	q := db.Model(&Tag{}).Where("id IN (?)", presentIDs(db, repo.ID, n))
	if names != nil {
		if len(names) == 0 {
			return []string{}, nil
		}
		q = q.Where("name IN ?", names)
	}
	var ids []string
	err := q.Order("name").Pluck("id", &ids).Error
	return ids, err
}

// ManifestIDsInVersion returns the ids of the manifests in version n of repo whose digest is
// in digests (any digest when nil) and whose media type is in mediaTypes (any when nil).
func ManifestIDsInVersion(db *gorm.DB, repo *Repository, n int64, digests, mediaTypes []string) ([]string, error) {
	if (digests != nil && len(digests) == 0) || (mediaTypes != nil && len(mediaTypes) == 0) {
		return []string{}, nil
	}
	q := db.Model(&Manifest{}).Where("id IN (?)", presentIDs(db, repo.ID, n))
	if digests != nil {
		q = q.Where("digest IN ?", digests)
	}
	if mediaTypes != nil {
		q = q.Where("media_type IN ?", mediaTypes)
	}
	var ids []string
	err := q.Order("digest").Pluck("id", &ids).Error
	return ids, err
}

// TagIDsOfManifest returns the ids of the tags in version n of repo that name manifestID.
func TagIDsOfManifest(db *gorm.DB, repo *Repository, n int64, manifestID string) ([]string, error) {
	var ids []string
	err := db.Model(&Tag{}).Where("tagged_manifest_id = ? AND id IN (?)", manifestID, presentIDs(db, repo.ID, n)).
		Order("name").Pluck("id", &ids).Error
	return ids, err
}

// link is one edge of the content graph: Parent needs Child.
type link struct {
	Parent, Child string
}

// childLinks returns the links from the manifests in ids to the content they need: listed
// manifests, layer blobs and config blobs.
func childLinks(db *gorm.DB, ids []string) (manifests, blobs []link, err error) {
	err = inChunks(ids, func(part []string) error {
		var listed, layers, configs []link
		if err := db.Model(&ManifestListManifest{}).Select("manifest_list_id AS parent, manifest_id AS child").
			Where("manifest_list_id IN ?", part).Scan(&listed).Error; err != nil {
			return err
		}
		if err := db.Model(&ManifestBlob{}).Select("manifest_id AS parent, blob_id AS child").
			Where("manifest_id IN ?", part).Scan(&layers).Error; err != nil {
			return err
		}
		if err := db.Model(&Manifest{}).Select("id AS parent, config_blob_id AS child").
			Where("id IN ? AND config_blob_id IS NOT NULL", part).Scan(&configs).Error; err != nil {
			return err
		}
		manifests = append(manifests, listed...)
		blobs = append(append(blobs, layers...), configs...)
		return nil
	})
	return manifests, blobs, err
}

// tagLinks returns the links from the tags in ids to their manifests.
func tagLinks(db *gorm.DB, ids []string) ([]link, error) {
	var out []link
	err := inChunks(ids, func(part []string) error {
		var ls []link
		if err := db.Model(&Tag{}).Select("id AS parent, tagged_manifest_id AS child").
			Where("id IN ?", part).Scan(&ls).Error; err != nil {
			return err
		}
		out = append(out, ls...)
		return nil
	})
	return out, err
}

// AddClosure returns the units of ids (ids of no content are ignored) together with
// everything they need, tags first, then manifests, then blobs: a tag brings its manifest, an
// index the manifests it lists (recursively), a manifest its config blob and layer blobs.
func AddClosure(db *gorm.DB, ids []string) ([]ContentRef, error) {
	types, err := FindContent(db, ids)
	if err != nil {
		return nil, err
	}
	seen := map[string]string{}
	var tags, manifests, blobs []string
	put := func(id, typ string) bool {
		if _, ok := seen[id]; ok {
			return false
		}
		seen[id] = typ
		switch typ {
		case KindTag.PulpType:
			tags = append(tags, id)
		case KindManifest.PulpType:
			manifests = append(manifests, id)
		default:
			blobs = append(blobs, id)
		}
		return true
	}
	var frontier []string
	for _, id := range ids {
		if typ, ok := types[id]; ok && put(id, typ) && typ == KindManifest.PulpType {
			frontier = append(frontier, id)
		}
	}
	tl, err := tagLinks(db, tags)
	if err != nil {
		return nil, err
	}
	for _, l := range tl {
		if put(l.Child, KindManifest.PulpType) {
			frontier = append(frontier, l.Child)
		}
	}
	for len(frontier) > 0 {
		ml, bl, err := childLinks(db, frontier)
		if err != nil {
			return nil, err
		}
		frontier = nil
		for _, l := range ml {
			if put(l.Child, KindManifest.PulpType) {
				frontier = append(frontier, l.Child)
			}
		}
		for _, l := range bl {
			put(l.Child, KindBlob.PulpType)
		}
	}
	out := make([]ContentRef, 0, len(seen))
	for _, group := range [][]string{tags, manifests, blobs} {
		for _, id := range group {
			out = append(out, ContentRef{Type: seen[id], ID: id})
		}
	}
	return out, nil
}

// replacedTags returns the tags in the latest version of repo that share a name with one of
// the tags in adding but are not among them: a new tag "x" replaces the old "x". Two tags of
// one name in adding are ErrDuplicateTags.
func replacedTags(tx *gorm.DB, repo *Repository, adding []string) ([]ContentRef, error) {
	if len(adding) == 0 {
		return nil, nil
	}
	type named struct{ ID, Name string }
	var rows []named
	if err := inChunks(adding, func(part []string) error {
		var rs []named
		if err := tx.Model(&Tag{}).Select("id, name").Where("id IN ?", part).Scan(&rs).Error; err != nil {
			return err
		}
		rows = append(rows, rs...)
		return nil
	}); err != nil {
		return nil, err
	}
	byName := map[string]string{}
	var names []string
	for _, r := range rows {
		if other, ok := byName[r.Name]; ok && other != r.ID {
			return nil, fmt.Errorf("%w: more than one tag named %q", ErrDuplicateTags, r.Name)
		}
		byName[r.Name] = r.ID
		names = append(names, r.Name)
	}
	var out []ContentRef
	err := inChunks(names, func(part []string) error {
		var present []named
		if err := tx.Model(&Tag{}).Select("id, name").
			Where("name IN ? AND id IN (?)", part, presentIDs(tx, repo.ID, repo.LatestNumber)).Scan(&present).Error; err != nil {
			return err
		}
		for _, p := range present {
			if byName[p.Name] != p.ID {
				out = append(out, ContentRef{Type: KindTag.PulpType, ID: p.ID})
			}
		}
		return nil
	})
	return out, err
}

// RecursiveAdd adds the units ids, with everything they need (AddClosure), to a new version
// of repo, replacing the tags of the same names. It returns nil when nothing changes. tx
// should be a transaction, and the caller should hold the repository's reservation.
func RecursiveAdd(tx *gorm.DB, repo *Repository, ids []string) (*RepositoryVersion, error) {
	add, err := AddClosure(tx, ids)
	if err != nil {
		return nil, err
	}
	var tags []string
	for _, c := range add {
		if c.Type == KindTag.PulpType {
			tags = append(tags, c.ID)
		}
	}
	remove, err := replacedTags(tx, repo, tags)
	if err != nil {
		return nil, err
	}
	return NewVersion(tx, repo, add, remove)
}

// presentContent returns the units of version n of repo as id → pulp_type.
func presentContent(db *gorm.DB, repo *Repository, n int64) (map[string]string, error) {
	var rows []struct{ ContentID, ContentType string }
	if err := PresentIn(db.Model(&RepositoryContent{}).Select("content_id, content_type"), repo.ID, n).
		Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.ContentID] = r.ContentType
	}
	return out, nil
}

// RecursiveRemove removes the units ids from a new version of repo together with what only
// they needed, as pulp_container does: removing a tag removes its manifest, removing an index
// its listed manifests, removing a manifest its blobs; but a unit still needed by content that
// stays in the version (a manifest another tag names, a blob another manifest uses) stays,
// even when ids name it. Units not in the latest version are ignored. It returns nil when
// nothing changes.
func RecursiveRemove(tx *gorm.DB, repo *Repository, ids []string) (*RepositoryVersion, error) {
	n := repo.LatestNumber
	present, err := presentContent(tx, repo, n)
	if err != nil {
		return nil, err
	}
	seeds := map[string]bool{}
	for _, id := range ids {
		if _, ok := present[id]; ok {
			seeds[id] = true
		}
	}
	if len(seeds) == 0 {
		return nil, nil
	}
	var tags, manifests []string
	for id, typ := range present {
		switch typ {
		case KindTag.PulpType:
			tags = append(tags, id)
		case KindManifest.PulpType:
			manifests = append(manifests, id)
		}
	}
	sort.Strings(tags)
	sort.Strings(manifests)
	tl, err := tagLinks(tx, tags)
	if err != nil {
		return nil, err
	}
	ml, bl, err := childLinks(tx, manifests)
	if err != nil {
		return nil, err
	}
	// The graph of the version: only links between units present in it count.
	children := map[string][]string{}
	parents := map[string]int{}
	seenLink := map[link]bool{}
	for _, group := range [][]link{tl, ml, bl} {
		for _, l := range group {
			_, pok := present[l.Parent]
			_, cok := present[l.Child]
			if !pok || !cok || seenLink[l] {
				continue
			}
			seenLink[l] = true
			children[l.Parent] = append(children[l.Parent], l.Child)
			parents[l.Child]++
		}
	}
	// Decide parents before children (Kahn's order): a unit goes when it was named or a parent
	// goes, and no parent stays.
	parentGoes, parentStays := map[string]bool{}, map[string]bool{}
	var queue []string
	for id := range present {
		if parents[id] == 0 {
			queue = append(queue, id)
		}
	}
	sort.Strings(queue)
	var remove []ContentRef
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		goes := (seeds[id] || parentGoes[id]) && !parentStays[id]
		if goes {
			remove = append(remove, ContentRef{Type: present[id], ID: id})
		}
		for _, c := range children[id] {
			if goes {
				parentGoes[c] = true
			} else {
				parentStays[c] = true
			}
			parents[c]--
			if parents[c] == 0 {
				queue = append(queue, c)
			}
		}
	}
	return NewVersion(tx, repo, nil, remove)
}

// RemoveAll removes every unit from a new version of repo (remove with ["*"]). It returns nil
// when the latest version is already empty.
func RemoveAll(tx *gorm.DB, repo *Repository) (*RepositoryVersion, error) {
	present, err := presentContent(tx, repo, repo.LatestNumber)
	if err != nil {
		return nil, err
	}
	remove := make([]ContentRef, 0, len(present))
	for id, typ := range present {
		remove = append(remove, ContentRef{Type: typ, ID: id})
	}
	sort.Slice(remove, func(i, j int) bool { return remove[i].ID < remove[j].ID })
	return NewVersion(tx, repo, nil, remove)
}

// TagImage tags manifestID name in a new version of repo, removing the other tag of that name
// if there is one. The manifest must be in the latest version (an error with Pulp's message
// otherwise). It returns the tag, whether the tag was created, and the new version (nil when
// the repository already had that tag).
func TagImage(tx *gorm.DB, repo *Repository, name, manifestID string) (tag *Tag, created bool, v *RepositoryVersion, err error) {
	var m Manifest
	if err := tx.Where("id = ? AND id IN (?)", manifestID, presentIDs(tx, repo.ID, repo.LatestNumber)).Take(&m).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			digest := manifestID
			if tx.Take(&m, "id = ?", manifestID).Error == nil {
				digest = m.Digest
			}
			return nil, false, nil, errors.New(ManifestMissingMessage(digest, repo))
		}
		return nil, false, nil, err
	}
	var n int64
	if err := tx.Model(&Tag{}).Where("name = ? AND tagged_manifest_id = ?", name, manifestID).Count(&n).Error; err != nil {
		return nil, false, nil, err
	}
	tag, err = GetOrCreateTag(tx, name, manifestID)
	if err != nil {
		return nil, false, nil, err
	}
	remove, err := replacedTags(tx, repo, []string{tag.ID})
	if err != nil {
		return nil, false, nil, err
	}
	v, err = NewVersion(tx, repo, []ContentRef{{Type: KindTag.PulpType, ID: tag.ID}}, remove)
	return tag, n == 0, v, err
}

// Untag removes the tag name from a new version of repo (its manifest stays). It returns nil
// when the latest version has no such tag.
func Untag(tx *gorm.DB, repo *Repository, name string) (*RepositoryVersion, error) {
	ids, err := TagIDsInVersion(tx, repo, repo.LatestNumber, []string{name})
	if err != nil {
		return nil, err
	}
	remove := make([]ContentRef, 0, len(ids))
	for _, id := range ids {
		remove = append(remove, ContentRef{Type: KindTag.PulpType, ID: id})
	}
	return NewVersion(tx, repo, nil, remove)
}

// ManifestMissingMessage is Pulp's message for a digest that names no manifest in the latest
// version of repo.
func ManifestMissingMessage(digest string, repo *Repository) string {
	return fmt.Sprintf("A manifest with the digest '%s' does not exist in the latest repository version '%s'",
		digest, VersionLabel(repo, repo.LatestNumber))
}

// TagMissingMessage is Pulp's message for a tag name not in the latest version of repo.
func TagMissingMessage(name string, repo *Repository) string {
	return fmt.Sprintf("The tag '%s' does not exist in the latest repository version '%s'",
		name, VersionLabel(repo, repo.LatestNumber))
}
