package server

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/gen"
	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/tasks"
)

// repositoryRules are what both repositories' serializers add to their schemas.
func repositoryRules() map[string]rule {
	return map[string]rule{
		"name": {unique: true, ident: true},
		// There are no signing services: any href is refused, null is dropped.
		"manifest_signing_service": {ignore: true},
	}
}

var repositoryReadOnly = []string{"versions_href", "latest_version_href"}

var containerRepositorySerializer = &serializer{
	schema: "container.ContainerRepository",
	kind:   models.KindContainerRepository,
	model:  &models.Repository{},
	rules: withRules(repositoryRules(), map[string]rule{
		"remote": {key: "remote_id", refKinds: []models.Kind{models.KindContainerRemote}},
	}),
	readOnly: repositoryReadOnly,
}

var pushRepositorySerializer = &serializer{
	schema:   "container.ContainerPushRepository",
	kind:     models.KindPushRepository,
	model:    &models.Repository{},
	rules:    repositoryRules(),
	readOnly: repositoryReadOnly,
}

func repositoryListSpec(k models.Kind) *models.ListSpec {
	special := commonSpecial(k, "repositories")
	special["remote"] = func(q *gorm.DB, v string) (*gorm.DB, error) {
		if v == "null" {
			return q.Where("remote_id IS NULL"), nil
		}
		r, ok := models.ParseRef(v)
		if !ok {
			return nil, &models.BareListError{Msg: "URI couldn't be resolved: " + v}
		}
		return q.Where("remote_id = ?", r.ID), nil
	}
	return &models.ListSpec{
		Model: &models.Repository{},
		Scope: scopeType(k.PulpType),
		Columns: map[string]string{"name": "name", "pulp_created": "pulp_created", "pulp_last_updated": "pulp_last_updated",
			"retain_repo_versions": "retain_repo_versions", "retain_checkpoints": "retain_checkpoints",
			"description": "description", "next_version": "next_version", "pulp_id": "id"},
		Special: special,
		Order:   "name",
	}
}

// RepositoriesContainerContainerList lists container repositories.
func (s *Server) RepositoriesContainerContainerList(c *gin.Context, _ gen.RepositoriesContainerContainerListParams) {
	s.respond(c, list[models.Repository](s, c, repositoryListSpec(models.KindContainerRepository)))
}

// RepositoriesContainerContainerCreate creates a container repository and its version 0 (201).
func (s *Server) RepositoriesContainerContainerCreate(c *gin.Context) {
	s.respond(c, s.createNow(c, containerRepositorySerializer))
}

// RepositoriesContainerContainerRead shows a container repository.
func (s *Server) RepositoriesContainerContainerRead(c *gin.Context, id string, _ gen.RepositoriesContainerContainerReadParams) {
	s.respond(c, s.readObject(c, models.KindContainerRepository, id))
}

// RepositoriesContainerContainerUpdate replaces a container repository.
func (s *Server) RepositoriesContainerContainerUpdate(c *gin.Context, id string) {
	s.respond(c, s.updateObject(c, containerRepositorySerializer, id, modePut))
}

// RepositoriesContainerContainerPartialUpdate patches a container repository.
func (s *Server) RepositoriesContainerContainerPartialUpdate(c *gin.Context, id string) {
	s.respond(c, s.updateObject(c, containerRepositorySerializer, id, modePatch))
}

// RepositoriesContainerContainerDelete deletes a container repository (task).
func (s *Server) RepositoriesContainerContainerDelete(c *gin.Context, id string) {
	s.respond(c, s.deleteObject(c, models.KindContainerRepository, id, tasks.NameGeneralDelete))
}

// RepositoriesContainerContainerSetLabel sets a label on a container repository.
func (s *Server) RepositoriesContainerContainerSetLabel(c *gin.Context, id string) {
	s.respond(c, s.setLabel(c, models.KindContainerRepository, id))
}

// RepositoriesContainerContainerUnsetLabel removes a label from a container repository.
func (s *Server) RepositoriesContainerContainerUnsetLabel(c *gin.Context, id string) {
	s.respond(c, s.unsetLabel(c, models.KindContainerRepository, id))
}

// RepositoriesContainerContainerPushList lists push repositories.
func (s *Server) RepositoriesContainerContainerPushList(c *gin.Context, _ gen.RepositoriesContainerContainerPushListParams) {
	s.respond(c, list[models.Repository](s, c, repositoryListSpec(models.KindPushRepository)))
}

// RepositoriesContainerContainerPushRead shows a push repository.
func (s *Server) RepositoriesContainerContainerPushRead(c *gin.Context, id string, _ gen.RepositoriesContainerContainerPushReadParams) {
	s.respond(c, s.readObject(c, models.KindPushRepository, id))
}

// RepositoriesContainerContainerPushUpdate replaces a push repository.
func (s *Server) RepositoriesContainerContainerPushUpdate(c *gin.Context, id string) {
	s.respond(c, s.updateObject(c, pushRepositorySerializer, id, modePut))
}

// RepositoriesContainerContainerPushPartialUpdate patches a push repository.
func (s *Server) RepositoriesContainerContainerPushPartialUpdate(c *gin.Context, id string) {
	s.respond(c, s.updateObject(c, pushRepositorySerializer, id, modePatch))
}

// RepositoriesList lists repositories of every kind.
func (s *Server) RepositoriesList(c *gin.Context, _ gen.RepositoriesListParams) {
	spec := repositoryListSpec(models.KindContainerRepository)
	spec.Scope = nil
	spec.Columns["pulp_type"] = "pulp_type"
	s.respond(c, listView[models.Repository](s, c, spec, genericRepository))
}

func (s *Server) listVersions(c *gin.Context, k models.Kind, id string) error {
	obj, err := s.getObject(c, k, id)
	if err != nil {
		return err
	}
	repo := obj.(*models.Repository)
	lq := parseListQuery(c)
	q := s.db.WithContext(c).Model(&models.RepositoryVersion{}).Where("repository_id = ?", repo.ID)
	spec := &models.ListSpec{
		Model: &models.RepositoryVersion{},
		Columns: map[string]string{"number": "number", "pulp_created": "pulp_created",
			"pulp_last_updated": "pulp_last_updated", "pulp_id": "id"},
		Special: map[string]models.FilterFunc{
			"content": func(q *gorm.DB, v string) (*gorm.DB, error) {
				return s.versionsWithContent(c, q, repo, []string{v})
			},
			"content__in": func(q *gorm.DB, v string) (*gorm.DB, error) {
				return s.versionsWithContent(c, q, repo, models.SplitList(v))
			},
			"pulp_href__in": func(q *gorm.DB, v string) (*gorm.DB, error) {
				var nums []int64
				for _, h := range models.SplitList(v) {
					if r, ok := models.ParseRef(h); ok && r.Version != nil && r.ID == repo.ID {
						nums = append(nums, *r.Version)
					}
				}
				return q.Where("number IN ?", append(nums, -1)), nil
			},
		},
		Order: "number DESC",
	}
	q, err = spec.Apply(q, lq.filters)
	if err != nil {
		return err
	}
	order, err := orderSQL(spec, lq.ordering)
	if err != nil {
		return err
	}
	var rows []models.RepositoryVersion
	count, err := models.Page(q, order, lq.limit, lq.offset, &rows)
	if err != nil {
		return err
	}
	results := make([]any, 0, len(rows))
	for i := range rows {
		m, err := models.SerializeVersion(s.db, repo, &rows[i])
		if err != nil {
			return err
		}
		results = append(results, selectFields(m, lq.fields, lq.exclude))
	}
	return writePage(c, lq, count, results)
}

// versionsWithContent keeps the versions of repo that hold every content unit in hrefs; an
// href that is not one, or names no content, is Pulp's 400 ("URI not valid: ...", "Could not
// find the following content units: [...]").
func (s *Server) versionsWithContent(c *gin.Context, q *gorm.DB, repo *models.Repository, hrefs []string) (*gorm.DB, error) {
	ids, err := s.contentIDs(c, hrefs)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		q = q.Where(`EXISTS (SELECT 1 FROM repository_contents rc WHERE rc.repository_id = ? AND rc.content_id = ?
			AND rc.version_added <= repository_versions.number AND (rc.version_removed IS NULL OR rc.version_removed > repository_versions.number))`,
			repo.ID, id)
	}
	return q, nil
}

func (s *Server) readVersion(c *gin.Context, k models.Kind, id string, number int64) error {
	obj, err := s.getObject(c, k, id)
	if err != nil {
		return err
	}
	repo := obj.(*models.Repository)
	v, err := models.GetVersion(s.db.WithContext(c), repo, number)
	if err != nil {
		return err
	}
	m, err := models.SerializeVersion(s.db, repo, v)
	if err != nil {
		return err
	}
	fields, exclude := fieldParams(c)
	return writeJSON(c, http.StatusOK, selectFields(m, fields, exclude))
}

func (s *Server) deleteVersion(c *gin.Context, k models.Kind, id string, number int64) error {
	obj, err := s.getObject(c, k, id)
	if err != nil {
		return err
	}
	repo := obj.(*models.Repository)
	v, err := models.GetVersion(s.db.WithContext(c), repo, number)
	if err != nil {
		return err
	}
	if countWhere(s.db, &models.Distribution{}, "repository_version_id = ?", v.ID) > 0 {
		return models.NewValidationError("non_field_errors", models.ErrVersionInUse.Error())
	}
	return s.dispatch(c, models.NewTask{Name: tasks.NameDeleteVersion, Exclusive: []string{k.PRNOf(repo.ID)},
		Args: tasks.VersionArgs{RepositoryID: repo.ID, Number: number}})
}

// RepositoriesContainerContainerVersionsList lists a container repository's versions.
func (s *Server) RepositoriesContainerContainerVersionsList(c *gin.Context, id string, _ gen.RepositoriesContainerContainerVersionsListParams) {
	s.respond(c, s.listVersions(c, models.KindContainerRepository, id))
}

// RepositoriesContainerContainerVersionsRead shows one version of a container repository.
func (s *Server) RepositoriesContainerContainerVersionsRead(c *gin.Context, id string, number int64, _ gen.RepositoriesContainerContainerVersionsReadParams) {
	s.respond(c, s.readVersion(c, models.KindContainerRepository, id, number))
}

// RepositoriesContainerContainerVersionsDelete deletes one version (task).
func (s *Server) RepositoriesContainerContainerVersionsDelete(c *gin.Context, id string, number int64) {
	s.respond(c, s.deleteVersion(c, models.KindContainerRepository, id, number))
}

// RepositoriesContainerContainerPushVersionsList lists a push repository's versions.
func (s *Server) RepositoriesContainerContainerPushVersionsList(c *gin.Context, id string, _ gen.RepositoriesContainerContainerPushVersionsListParams) {
	s.respond(c, s.listVersions(c, models.KindPushRepository, id))
}

// RepositoriesContainerContainerPushVersionsRead shows one version of a push repository.
func (s *Server) RepositoriesContainerContainerPushVersionsRead(c *gin.Context, id string, number int64, _ gen.RepositoriesContainerContainerPushVersionsReadParams) {
	s.respond(c, s.readVersion(c, models.KindPushRepository, id, number))
}

// RepositoriesContainerContainerPushVersionsDelete deletes one version of a push repository.
func (s *Server) RepositoriesContainerContainerPushVersionsDelete(c *gin.Context, id string, number int64) {
	s.respond(c, s.deleteVersion(c, models.KindPushRepository, id, number))
}
