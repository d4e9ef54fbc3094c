package server

import (
	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/gen"
	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/tasks"
)

// remoteRules are what both remotes' serializers add to their schemas.
func remoteRules() map[string]rule {
	return map[string]rule{
		"name":      {unique: true, ident: true},
		"url":       {url: true},
		"proxy_url": {url: true},
		// Pulp's document has headers not nullable; a null has always been accepted here.
		"headers": {nullable: true},
	}
}

var remoteReadOnly = []string{"hidden_fields"}

var containerRemoteSerializer = &serializer{
	schema: "container.ContainerRemote",
	kind:   models.KindContainerRemote,
	model:  &models.Remote{},
	rules: withRules(remoteRules(), map[string]rule{
		"upstream_name": {ident: true},
		// The deprecated tag filters are the includes and excludes of the model.
		"include_tags": {key: "includes"},
		"exclude_tags": {key: "excludes"},
		// Stored, never used (no sync): accepted as text and as null, as always here.
		"sigstore": {plain: true, nullable: true},
	}),
	readOnly: remoteReadOnly,
	check:    checkRemote,
}

var pullThroughRemoteSerializer = &serializer{
	schema:   "container.ContainerPullThroughRemote",
	kind:     models.KindPullThroughRemote,
	model:    &models.Remote{},
	rules:    remoteRules(),
	readOnly: remoteReadOnly,
	check:    checkRemote,
}

// checkRemote fills tls_validation on create, which Pulp's model defaults to true.
func checkRemote(_ *Server, in *input, _ *models.ValidationError) {
	if in.id != "" {
		return
	}
	if _, ok := in.values["tls_validation"]; !ok {
		in.values["tls_validation"] = []byte("true")
	}
}

// withRules returns base with more added.
func withRules(base, more map[string]rule) map[string]rule {
	for k, v := range more {
		base[k] = v
	}
	return base
}

func remoteListSpec(k models.Kind) *models.ListSpec {
	return &models.ListSpec{
		Model: &models.Remote{},
		Scope: scopeType(k.PulpType),
		Columns: map[string]string{"name": "name", "pulp_created": "pulp_created",
			"pulp_last_updated": "pulp_last_updated", "url": "url", "policy": "policy", "pulp_id": "id"},
		Special: commonSpecial(k, "remotes"),
		Order:   "pulp_created DESC, id DESC",
	}
}

// commonSpecial are the filters every list of one kind offers: pulp_href__in, prn__in,
// pulp_id__in and pulp_label_select.
func commonSpecial(k models.Kind, table string) map[string]models.FilterFunc {
	ids := func(values []string, parse func(string) (string, bool)) ([]string, error) {
		var out []string
		for _, v := range values {
			id, ok := parse(v)
			if !ok {
				return nil, &models.BareListError{Msg: "URI couldn't be resolved: " + v}
			}
			out = append(out, id)
		}
		return out, nil
	}
	byRef := func(v string) (string, bool) {
		r, ok := models.ParseRef(v)
		return r.ID, ok && r.Kind == k
	}
	return map[string]models.FilterFunc{
		"pulp_href__in": func(q *gorm.DB, v string) (*gorm.DB, error) {
			list, err := ids(models.SplitList(v), byRef)
			return q.Where(table+".id IN ?", append(list, "")), err
		},
		"prn__in": func(q *gorm.DB, v string) (*gorm.DB, error) {
			list, err := ids(models.SplitList(v), byRef)
			return q.Where(table+".id IN ?", append(list, "")), err
		},
		"pulp_id__in": func(q *gorm.DB, v string) (*gorm.DB, error) {
			return q.Where(table+".id IN ?", append(models.SplitList(v), "")), nil
		},
		"pulp_label_select": func(q *gorm.DB, v string) (*gorm.DB, error) {
			return models.LabelSelect(q, table+".pulp_labels", v)
		},
	}
}

// RemotesContainerContainerList lists container remotes.
func (s *Server) RemotesContainerContainerList(c *gin.Context, _ gen.RemotesContainerContainerListParams) {
	s.respond(c, list[models.Remote](s, c, remoteListSpec(models.KindContainerRemote)))
}

// RemotesContainerContainerCreate creates a container remote (201).
func (s *Server) RemotesContainerContainerCreate(c *gin.Context) {
	s.respond(c, s.createNow(c, containerRemoteSerializer))
}

// RemotesContainerContainerRead shows a container remote.
func (s *Server) RemotesContainerContainerRead(c *gin.Context, id string, _ gen.RemotesContainerContainerReadParams) {
	s.respond(c, s.readObject(c, models.KindContainerRemote, id))
}

// RemotesContainerContainerUpdate replaces a container remote.
func (s *Server) RemotesContainerContainerUpdate(c *gin.Context, id string) {
	s.respond(c, s.updateObject(c, containerRemoteSerializer, id, modePut))
}

// RemotesContainerContainerPartialUpdate patches a container remote.
func (s *Server) RemotesContainerContainerPartialUpdate(c *gin.Context, id string) {
	s.respond(c, s.updateObject(c, containerRemoteSerializer, id, modePatch))
}

// RemotesContainerContainerDelete deletes a container remote (task).
func (s *Server) RemotesContainerContainerDelete(c *gin.Context, id string) {
	s.respond(c, s.deleteObject(c, models.KindContainerRemote, id, tasks.NameGeneralDelete))
}

// RemotesContainerContainerSetLabel sets a label on a container remote.
func (s *Server) RemotesContainerContainerSetLabel(c *gin.Context, id string) {
	s.respond(c, s.setLabel(c, models.KindContainerRemote, id))
}

// RemotesContainerContainerUnsetLabel removes a label from a container remote.
func (s *Server) RemotesContainerContainerUnsetLabel(c *gin.Context, id string) {
	s.respond(c, s.unsetLabel(c, models.KindContainerRemote, id))
}

// RemotesContainerPullThroughList lists pull-through remotes.
func (s *Server) RemotesContainerPullThroughList(c *gin.Context, _ gen.RemotesContainerPullThroughListParams) {
	s.respond(c, list[models.Remote](s, c, remoteListSpec(models.KindPullThroughRemote)))
}

// RemotesContainerPullThroughCreate creates a pull-through remote (201).
func (s *Server) RemotesContainerPullThroughCreate(c *gin.Context) {
	s.respond(c, s.createNow(c, pullThroughRemoteSerializer))
}

// RemotesContainerPullThroughRead shows a pull-through remote.
func (s *Server) RemotesContainerPullThroughRead(c *gin.Context, id string, _ gen.RemotesContainerPullThroughReadParams) {
	s.respond(c, s.readObject(c, models.KindPullThroughRemote, id))
}

// RemotesContainerPullThroughUpdate replaces a pull-through remote.
func (s *Server) RemotesContainerPullThroughUpdate(c *gin.Context, id string) {
	s.respond(c, s.updateObject(c, pullThroughRemoteSerializer, id, modePut))
}

// RemotesContainerPullThroughPartialUpdate patches a pull-through remote.
func (s *Server) RemotesContainerPullThroughPartialUpdate(c *gin.Context, id string) {
	s.respond(c, s.updateObject(c, pullThroughRemoteSerializer, id, modePatch))
}

// RemotesContainerPullThroughDelete deletes a pull-through remote (task).
func (s *Server) RemotesContainerPullThroughDelete(c *gin.Context, id string) {
	s.respond(c, s.deleteObject(c, models.KindPullThroughRemote, id, tasks.NameGeneralDelete))
}

// RemotesContainerPullThroughSetLabel sets a label on a pull-through remote.
func (s *Server) RemotesContainerPullThroughSetLabel(c *gin.Context, id string) {
	s.respond(c, s.setLabel(c, models.KindPullThroughRemote, id))
}

// RemotesContainerPullThroughUnsetLabel removes a label from a pull-through remote.
func (s *Server) RemotesContainerPullThroughUnsetLabel(c *gin.Context, id string) {
	s.respond(c, s.unsetLabel(c, models.KindPullThroughRemote, id))
}

// RemotesList lists remotes of every kind.
func (s *Server) RemotesList(c *gin.Context, _ gen.RemotesListParams) {
	spec := remoteListSpec(models.KindContainerRemote)
	spec.Scope = nil
	spec.Columns["pulp_type"] = "pulp_type"
	s.respond(c, listView[models.Remote](s, c, spec, genericRemote))
}
