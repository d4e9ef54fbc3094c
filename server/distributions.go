package server

import (
	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/gen"
	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/tasks"
)

var repositoryKinds = []models.Kind{models.KindContainerRepository, models.KindPushRepository}

// distributionRules are what both distributions' serializers add to their schemas.
func distributionRules() map[string]rule {
	return map[string]rule{
		"name":      {unique: true, ident: true},
		"base_path": {unique: true, ident: true},
		// Not nullable (pulp_container's allow_null=False); omitted, it is the shared
		// "content redirect" guard (models.Create, Server.defaultContentGuard).
		"content_guard": {key: "content_guard_id", refKinds: []models.Kind{models.KindContentRedirectGuard}},
	}
}

var distributionReadOnly = []string{"namespace", "content_guard_prn", "no_content_change_since"}

var containerDistributionSerializer = &serializer{
	schema: "container.ContainerDistribution",
	kind:   models.KindContainerDistribution,
	model:  &models.Distribution{},
	rules: withRules(distributionRules(), map[string]rule{
		"repository":         {key: "repository_id", refKinds: repositoryKinds},
		"repository_version": {key: "repository_version_id", refKinds: []models.Kind{models.KindRepositoryVersion}},
	}),
	readOnly: append([]string{"registry_path", "remote"}, distributionReadOnly...),
	check: func(s *Server, in *input, errs *models.ValidationError) {
		defer s.defaultContentGuard(in, errs)
		if bp, ok := in.merged["base_path"].(string); ok && in.present["base_path"] && len(errs.Fields["base_path"]) == 0 {
			if !models.ValidContainerBasePath(bp) {
				errs.Add("base_path", "The provided base path contains forbidden characters.")
			} else if name, err := models.PullThroughAbove(s.db, bp, in.id); err != nil {
				errs.Add("base_path", "Could not check the base path against pull-through distributions.")
			} else if name != "" {
				// Only the cache creates distributions below a pull-through distribution.
				errs.Add("base_path", "Base path is below the pull-through distribution '"+name+"': only its cache creates distributions there.")
			}
		}
		if len(errs.Fields) == 0 && in.merged["repository"] != nil && in.merged["repository_version"] != nil {
			errs.Add("non_field_errors", "Only one of the attributes 'repository' and 'repository_version' may be used simultaneously.")
		}
	},
}

var pullThroughDistributionSerializer = &serializer{
	schema: "container.ContainerPullThroughDistribution",
	kind:   models.KindPullThroughDist,
	model:  &models.Distribution{},
	rules: withRules(distributionRules(), map[string]rule{
		"remote": {key: "remote_id", refKinds: []models.Kind{models.KindPullThroughRemote}},
		// The cache's children are listed in responses only; null has always been accepted.
		"distributions":      {ignore: true, nullable: true},
		"repository":         {ignore: true, refKinds: repositoryKinds},
		"repository_version": {ignore: true, refKinds: []models.Kind{models.KindRepositoryVersion}},
	}),
	readOnly: distributionReadOnly,
	check: func(s *Server, in *input, errs *models.ValidationError) {
		defer s.defaultContentGuard(in, errs)
		bp, ok := in.merged["base_path"].(string)
		if !ok || !in.present["base_path"] || len(errs.Fields["base_path"]) > 0 {
			return
		}
		if !models.ValidRelativePath(bp) {
			errs.Add("base_path", "Relative path can't start or end with '/', contain empty, '.' or '..' segments, or unsafe characters.")
			return
		}
		name, err := models.OverlappingDistribution(s.db, bp, in.id)
		if err == nil && name != "" {
			// Pulp nests this error one level deeper than the others.
			body := map[string]any{"base_path": map[string]string{"base_path": "Overlaps with existing distribution '" + name + "'"}}
			for f, msgs := range errs.Fields {
				body[f] = msgs
			}
			errs.Body = body
		}
	},
}

// distributionCreateResources are the reservations of a distribution create, as Pulp records them.
func distributionCreateResources() (exclusive, shared []string) {
	return []string{"pdrn:" + models.DefaultDomainID + ":distribution.base_path"},
		[]string{"pdrn:" + models.DefaultDomainID + ":distributions"}
}

func distributionListSpec(k models.Kind) *models.ListSpec {
	special := commonSpecial(k, "distributions")
	repoFilter := func(values []string) (func(q *gorm.DB) *gorm.DB, error) {
		var ids []string
		for _, v := range values {
			r, ok := models.ParseRef(v)
			if !ok || r.Version != nil {
				return nil, &models.BareListError{Msg: "URI couldn't be resolved: " + v}
			}
			ids = append(ids, r.ID)
		}
		return func(q *gorm.DB) *gorm.DB { return q.Where("repository_id IN ?", ids) }, nil
	}
	special["repository"] = func(q *gorm.DB, v string) (*gorm.DB, error) {
		f, err := repoFilter([]string{v})
		if err != nil {
			return nil, err
		}
		return f(q), nil
	}
	special["repository__in"] = func(q *gorm.DB, v string) (*gorm.DB, error) {
		f, err := repoFilter(models.SplitList(v))
		if err != nil {
			return nil, err
		}
		return f(q), nil
	}
	special["namespace__name"] = func(q *gorm.DB, v string) (*gorm.DB, error) {
		return q.Where("namespace_id IN (?)", q.Session(&gorm.Session{NewDB: true}).Model(&models.Namespace{}).Select("id").Where("name = ?", v)), nil
	}
	return &models.ListSpec{
		Model: &models.Distribution{},
		Scope: scopeType(k.PulpType),
		Columns: map[string]string{"name": "name", "base_path": "base_path", "pulp_created": "pulp_created",
			"pulp_last_updated": "pulp_last_updated", "pulp_id": "id"},
		Special: special,
		Order:   "pulp_created DESC, id DESC",
	}
}

// DistributionsContainerContainerList lists container distributions.
func (s *Server) DistributionsContainerContainerList(c *gin.Context, _ gen.DistributionsContainerContainerListParams) {
	s.respond(c, list[models.Distribution](s, c, distributionListSpec(models.KindContainerDistribution)))
}

// DistributionsContainerContainerCreate creates a container distribution (task).
func (s *Server) DistributionsContainerContainerCreate(c *gin.Context) {
	ex, sh := distributionCreateResources()
	s.respond(c, s.createTask(c, containerDistributionSerializer, ex, sh))
}

// DistributionsContainerContainerRead shows a container distribution.
func (s *Server) DistributionsContainerContainerRead(c *gin.Context, id string, _ gen.DistributionsContainerContainerReadParams) {
	s.respond(c, s.readObject(c, models.KindContainerDistribution, id))
}

// DistributionsContainerContainerUpdate replaces a container distribution.
func (s *Server) DistributionsContainerContainerUpdate(c *gin.Context, id string) {
	s.respond(c, s.updateObject(c, containerDistributionSerializer, id, modePut))
}

// DistributionsContainerContainerPartialUpdate patches a container distribution.
func (s *Server) DistributionsContainerContainerPartialUpdate(c *gin.Context, id string) {
	s.respond(c, s.updateObject(c, containerDistributionSerializer, id, modePatch))
}

// DistributionsContainerContainerDelete deletes a container distribution (task), and its lone
// repository as pulp_container 2.29 does.
func (s *Server) DistributionsContainerContainerDelete(c *gin.Context, id string) {
	s.respond(c, s.deleteObject(c, models.KindContainerDistribution, id, tasks.NameGeneralMultiDelete))
}

// DistributionsContainerContainerSetLabel sets a label on a container distribution.
func (s *Server) DistributionsContainerContainerSetLabel(c *gin.Context, id string) {
	s.respond(c, s.setLabel(c, models.KindContainerDistribution, id))
}

// DistributionsContainerContainerUnsetLabel removes a label from a container distribution.
func (s *Server) DistributionsContainerContainerUnsetLabel(c *gin.Context, id string) {
	s.respond(c, s.unsetLabel(c, models.KindContainerDistribution, id))
}

// DistributionsContainerPullThroughList lists pull-through distributions.
func (s *Server) DistributionsContainerPullThroughList(c *gin.Context, _ gen.DistributionsContainerPullThroughListParams) {
	s.respond(c, list[models.Distribution](s, c, distributionListSpec(models.KindPullThroughDist)))
}

// DistributionsContainerPullThroughCreate creates a pull-through distribution (task).
func (s *Server) DistributionsContainerPullThroughCreate(c *gin.Context) {
	ex, sh := distributionCreateResources()
	s.respond(c, s.createTask(c, pullThroughDistributionSerializer, ex, sh))
}

// DistributionsContainerPullThroughRead shows a pull-through distribution.
func (s *Server) DistributionsContainerPullThroughRead(c *gin.Context, id string, _ gen.DistributionsContainerPullThroughReadParams) {
	s.respond(c, s.readObject(c, models.KindPullThroughDist, id))
}

// DistributionsContainerPullThroughUpdate replaces a pull-through distribution.
func (s *Server) DistributionsContainerPullThroughUpdate(c *gin.Context, id string) {
	s.respond(c, s.updateObject(c, pullThroughDistributionSerializer, id, modePut))
}

// DistributionsContainerPullThroughPartialUpdate patches a pull-through distribution.
func (s *Server) DistributionsContainerPullThroughPartialUpdate(c *gin.Context, id string) {
	s.respond(c, s.updateObject(c, pullThroughDistributionSerializer, id, modePatch))
}

// DistributionsContainerPullThroughDelete deletes a pull-through distribution and its children
// (task).
func (s *Server) DistributionsContainerPullThroughDelete(c *gin.Context, id string) {
	s.respond(c, s.deleteObject(c, models.KindPullThroughDist, id, tasks.NameGeneralDelete))
}

// DistributionsContainerPullThroughSetLabel sets a label on a pull-through distribution.
func (s *Server) DistributionsContainerPullThroughSetLabel(c *gin.Context, id string) {
	s.respond(c, s.setLabel(c, models.KindPullThroughDist, id))
}

// DistributionsContainerPullThroughUnsetLabel removes a label from a pull-through distribution.
func (s *Server) DistributionsContainerPullThroughUnsetLabel(c *gin.Context, id string) {
	s.respond(c, s.unsetLabel(c, models.KindPullThroughDist, id))
}

// DistributionsList lists distributions of every kind.
func (s *Server) DistributionsList(c *gin.Context, _ gen.DistributionsListParams) {
	spec := distributionListSpec(models.KindContainerDistribution)
	spec.Scope = nil
	spec.Columns["pulp_type"] = "pulp_type"
	s.respond(c, listView[models.Distribution](s, c, spec, genericDistribution))
}
