package server

import (
	"errors"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/gen"
	"github.com/pulpgo/pulpgo/models"
)

// versionOf resolves a repository_version filter value: a version href (or PRN), or a
// repository href meaning its latest version. As Pulp's: a value that is no href is "URI not
// valid", one that names no version "URI ... not found for repositoryversion.".
func (s *Server) versionOf(v string) (*models.Repository, int64, error) {
	r, ok := models.ParseRef(v)
	if !ok {
		return nil, 0, &models.BareListError{Msg: "URI not valid: " + v}
	}
	bad := &models.BareListError{Msg: "URI " + v + " not found for repositoryversion."}
	if r.Kind == models.KindRepositoryVersion {
		var ver models.RepositoryVersion
		if err := s.db.Take(&ver, "id = ?", r.ID).Error; err != nil {
			return nil, 0, bad
		}
		var repo models.Repository
		if err := s.db.Take(&repo, "id = ?", ver.RepositoryID).Error; err != nil {
			return nil, 0, bad
		}
		return &repo, ver.Number, nil
	}
	if r.Kind != models.KindContainerRepository && r.Kind != models.KindPushRepository {
		return nil, 0, bad
	}
	repo, err := models.GetRepository(s.db, r.Kind, r.ID)
	if err != nil {
		return nil, 0, bad
	}
	if r.Version == nil {
		return repo, repo.LatestNumber, nil
	}
	if _, err := models.GetVersion(s.db, repo, *r.Version); err != nil {
		return nil, 0, bad
	}
	return repo, *r.Version, nil
}

// contentSpecial are the repository-version filters every content list offers.
func (s *Server) contentSpecial(k models.Kind, table string) map[string]models.FilterFunc {
	special := commonSpecial(k, table)
	member := func(cond string) models.FilterFunc {
		return func(q *gorm.DB, v string) (*gorm.DB, error) {
			repo, n, err := s.versionOf(v)
			if err != nil {
				return nil, err
			}
			sub := s.db.Model(&models.RepositoryContent{}).Select("content_id").Where("repository_id = ?", repo.ID)
			switch cond {
			case "present":
				sub = models.PresentIn(sub, repo.ID, n)
			case "added":
				sub = sub.Where("version_added = ?", n)
			case "removed":
				sub = sub.Where("version_removed = ?", n)
			}
			return q.Where(table+".id IN (?)", sub), nil
		}
	}
	// orphaned_for is pulpcore's OrphanedFilter: minutes (a number, truncated), negative for
	// the server's protection time.
	special["orphaned_for"] = func(q *gorm.DB, v string) (*gorm.DB, error) {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, models.NewValidationError("orphaned_for", "Enter a number.")
		}
		minutes := int64(min(f, float64(models.MaxOrphanProtectionMinutes)))
		if f < 0 {
			minutes = s.orphanProtection()
		}
		return models.Orphaned(q, table, models.OrphanExpiration(models.Now(), minutes)), nil
	}
	special["repository_version"] = member("present")
	special["repository_version_added"] = member("added")
	special["repository_version_removed"] = member("removed")
	return special
}

func (s *Server) blobListSpec() *models.ListSpec {
	return &models.ListSpec{
		Model:   &models.Blob{},
		Columns: map[string]string{"digest": "digest", "pulp_created": "pulp_created", "pulp_last_updated": "pulp_last_updated", "pulp_id": "id"},
		Special: s.contentSpecial(models.KindBlob, "blobs"),
		Order:   "pulp_created DESC, id DESC",
	}
}

func (s *Server) manifestListSpec() *models.ListSpec {
	spec := &models.ListSpec{
		Model: &models.Manifest{},
		Columns: map[string]string{"digest": "digest", "media_type": "media_type", "is_bootable": "is_bootable",
			"is_flatpak": "is_flatpak", "pulp_created": "pulp_created", "pulp_last_updated": "pulp_last_updated", "pulp_id": "id"},
		Special: s.contentSpecial(models.KindManifest, "manifests"),
		Order:   "pulp_created DESC, id DESC",
	}
	spec.Special["media_type"] = func(q *gorm.DB, v string) (*gorm.DB, error) {
		return q.Where("media_type IN ?", mediaTypes(v)), nil
	}
	return spec
}

func mediaTypes(v string) []string { return models.SplitList(v) }

func (s *Server) tagListSpec() *models.ListSpec {
	spec := &models.ListSpec{
		Model:   &models.Tag{},
		Columns: map[string]string{"name": "name", "pulp_created": "pulp_created", "pulp_last_updated": "pulp_last_updated", "pulp_id": "id"},
		Special: s.contentSpecial(models.KindTag, "tags"),
		Order:   "pulp_created DESC, id DESC",
	}
	manifests := func(cond string, arg any) *gorm.DB {
		return s.db.Model(&models.Manifest{}).Select("id").Where(cond, arg)
	}
	spec.Special["digest"] = func(q *gorm.DB, v string) (*gorm.DB, error) {
		return q.Where("tagged_manifest_id IN (?)", manifests("digest IN ?", models.SplitList(v))), nil
	}
	spec.Special["media_type"] = func(q *gorm.DB, v string) (*gorm.DB, error) {
		return q.Where("tagged_manifest_id IN (?)", manifests("media_type IN ?", mediaTypes(v))), nil
	}
	return spec
}

// ContentContainerBlobsList lists blobs.
func (s *Server) ContentContainerBlobsList(c *gin.Context, _ gen.ContentContainerBlobsListParams) {
	s.respond(c, list[models.Blob](s, c, s.blobListSpec()))
}

// ContentContainerManifestsList lists manifests.
func (s *Server) ContentContainerManifestsList(c *gin.Context, _ gen.ContentContainerManifestsListParams) {
	s.respond(c, list[models.Manifest](s, c, s.manifestListSpec()))
}

// ContentContainerTagsList lists tags.
func (s *Server) ContentContainerTagsList(c *gin.Context, _ gen.ContentContainerTagsListParams) {
	s.respond(c, list[models.Tag](s, c, s.tagListSpec()))
}

func readContent[T any, PT interface {
	*T
	models.Object
}](s *Server, c *gin.Context, k models.Kind, id string) error {
	if !models.ValidID(id) {
		return errNotFound
	}
	var row T
	if err := s.db.WithContext(c).Take(&row, "id = ?", id).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return &models.NotFoundError{Model: k.Model, Ref: id}
		}
		return err
	}
	return s.renderObject(c, http.StatusOK, PT(&row))
}

// ContentContainerBlobsRead shows a blob.
func (s *Server) ContentContainerBlobsRead(c *gin.Context, id string, _ gen.ContentContainerBlobsReadParams) {
	s.respond(c, readContent[models.Blob](s, c, models.KindBlob, id))
}

// ContentContainerManifestsRead shows a manifest.
func (s *Server) ContentContainerManifestsRead(c *gin.Context, id string, _ gen.ContentContainerManifestsReadParams) {
	s.respond(c, readContent[models.Manifest](s, c, models.KindManifest, id))
}

// ContentContainerTagsRead shows a tag.
func (s *Server) ContentContainerTagsRead(c *gin.Context, id string, _ gen.ContentContainerTagsReadParams) {
	s.respond(c, readContent[models.Tag](s, c, models.KindTag, id))
}

// ContentList lists content of every type (core's /content/), as pulp-cli's
// `repository content list --all-types` uses it; newest first.
func (s *Server) ContentList(c *gin.Context, _ gen.ContentListParams) {
	s.respond(c, s.listContent(c))
}

func (s *Server) listContent(c *gin.Context) error {
	lq := parseListQuery(c)
	type item struct {
		created string
		m       map[string]any
	}
	var items []item
	collect := func(spec *models.ListSpec, pulpType string, load func(q *gorm.DB) ([]models.Object, error)) error {
		filters := map[string]string{}
		for k, v := range lq.filters {
			if _, ok := spec.Special[k]; ok {
				filters[k] = v
			}
		}
		q, err := spec.Apply(s.db.WithContext(c), filters)
		if err != nil {
			return err
		}
		objs, err := load(q)
		if err != nil {
			return err
		}
		for _, o := range objs {
			m, err := o.Serialize(s.db, c.Request.Host)
			if err != nil {
				return err
			}
			m["pulp_type"] = pulpType
			items = append(items, item{m["pulp_created"].(string), m})
		}
		return nil
	}
	err := collect(s.blobListSpec(), models.KindBlob.PulpType, findAll[models.Blob])
	if err == nil {
		err = collect(s.manifestListSpec(), models.KindManifest.PulpType, findAll[models.Manifest])
	}
	if err == nil {
		err = collect(s.tagListSpec(), models.KindTag.PulpType, findAll[models.Tag])
	}
	if err != nil {
		return err
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].created > items[j].created })
	count := len(items)
	end := min(lq.offset+lq.limit, count)
	start := min(lq.offset, count)
	results := make([]any, 0, end-start)
	for _, it := range items[start:end] {
		results = append(results, selectFields(it.m, lq.fields, lq.exclude))
	}
	return writePage(c, lq, int64(count), results)
}

// findAll loads every row of q as Objects.
func findAll[T any, PT interface {
	*T
	models.Object
}](q *gorm.DB) ([]models.Object, error) {
	var rows []T
	err := q.Find(&rows).Error
	out := make([]models.Object, len(rows))
	for i := range rows {
		out[i] = PT(&rows[i])
	}
	return out, err
}
