package server

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/gen"
	"github.com/pulpgo/pulpgo/models"
)

// contentRedirectGuardSerializer is pulpcore's ContentRedirectContentGuardSerializer: a unique
// name and an optional description. Pulp's guard also holds a shared secret for signing
// redirect URLs, which nothing here uses (docs/api.md).
var contentRedirectGuardSerializer = &serializer{
	schema: "ContentRedirectContentGuard",
	kind:   models.KindContentRedirectGuard,
	model:  &models.ContentGuard{},
	rules:  map[string]rule{"name": {unique: true, ident: true}},
}

func contentGuardListSpec(generic bool) *models.ListSpec {
	special := commonSpecial(models.KindContentRedirectGuard, "content_guards")
	delete(special, "pulp_label_select") // guards have no labels: Pulp offers no such filter
	spec := &models.ListSpec{
		Model: &models.ContentGuard{},
		Scope: scopeType(models.KindContentRedirectGuard.PulpType),
		Columns: map[string]string{"name": "name", "description": "description", "pulp_created": "pulp_created",
			"pulp_last_updated": "pulp_last_updated", "pulp_id": "id"},
		Special: special,
		Order:   "pulp_created DESC, id DESC",
	}
	if generic {
		spec.Scope = nil
		spec.Columns["pulp_type"] = "pulp_type"
	}
	return spec
}

// ContentguardsList lists content guards of every kind (here: content redirect guards only).
func (s *Server) ContentguardsList(c *gin.Context, _ gen.ContentguardsListParams) {
	s.respond(c, list[models.ContentGuard](s, c, contentGuardListSpec(true)))
}

// ContentguardsCoreContentRedirectList lists content redirect guards.
func (s *Server) ContentguardsCoreContentRedirectList(c *gin.Context, _ gen.ContentguardsCoreContentRedirectListParams) {
	s.respond(c, list[models.ContentGuard](s, c, contentGuardListSpec(false)))
}

// ContentguardsCoreContentRedirectCreate creates a content redirect guard (201, synchronous as
// in Pulp, whose guard viewsets use DRF's plain mixins).
func (s *Server) ContentguardsCoreContentRedirectCreate(c *gin.Context) {
	s.respond(c, s.createNow(c, contentRedirectGuardSerializer))
}

// ContentguardsCoreContentRedirectRead shows a content redirect guard.
func (s *Server) ContentguardsCoreContentRedirectRead(c *gin.Context, id string, _ gen.ContentguardsCoreContentRedirectReadParams) {
	s.respond(c, s.readObject(c, models.KindContentRedirectGuard, id))
}

// ContentguardsCoreContentRedirectUpdate replaces a content redirect guard (200).
func (s *Server) ContentguardsCoreContentRedirectUpdate(c *gin.Context, id string) {
	s.respond(c, s.updateNow(c, contentRedirectGuardSerializer, id, modePut))
}

// ContentguardsCoreContentRedirectPartialUpdate patches a content redirect guard (200).
func (s *Server) ContentguardsCoreContentRedirectPartialUpdate(c *gin.Context, id string) {
	s.respond(c, s.updateNow(c, contentRedirectGuardSerializer, id, modePatch))
}

// ContentguardsCoreContentRedirectDelete deletes a content redirect guard (204); the
// distributions that used it are left without one (Pulp's on_delete=SET_NULL).
func (s *Server) ContentguardsCoreContentRedirectDelete(c *gin.Context, id string) {
	s.respond(c, s.deleteNow(c, models.KindContentRedirectGuard, id))
}

// deleteNow answers DELETE synchronously: 204.
func (s *Server) deleteNow(c *gin.Context, k models.Kind, id string) error {
	if _, err := s.getObject(c, k, id); err != nil {
		return err
	}
	err := s.db.WithContext(c).Transaction(func(tx *gorm.DB) error {
		return models.Delete(tx, k, id)
	})
	if err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

// updateNow answers PUT/PATCH synchronously: 200 with the updated object.
func (s *Server) updateNow(c *gin.Context, ser *serializer, id string, m mode) error {
	obj, err := s.getObject(c, ser.kind, id)
	if err != nil {
		return err
	}
	in, err := s.bind(c, ser, m, obj)
	if err != nil {
		return err
	}
	err = s.db.WithContext(c).Transaction(func(tx *gorm.DB) error {
		var err error
		obj, err = models.Update(tx, ser.kind, id, valuesJSON(in))
		return err
	})
	if err == models.ErrNotUnique {
		return models.NewValidationError("name", "This field must be unique.")
	}
	if err != nil {
		return err
	}
	return s.renderObject(c, http.StatusOK, obj)
}

// defaultContentGuard gives a distribution update that names no content_guard the shared
// "content redirect" guard when the distribution has none (a child of the pull-through cache,
// or one whose guard was deleted), as pulp_container's serializers do in validate() on every
// create and update; creates get it in models.Create. A guard the distribution has is kept:
// Pulp would put back the default one, but in Pulp no other guard can be set (docs/api.md).
func (s *Server) defaultContentGuard(in *input, errs *models.ValidationError) {
	if in.id == "" || in.present["content_guard"] || len(errs.Fields) > 0 || errs.Body != nil || in.merged["content_guard"] != nil {
		return
	}
	id, err := models.EnsureDefaultContentGuard(s.db)
	if err != nil {
		errs.Add("content_guard", "Could not create the default content guard.")
		return
	}
	b, _ := json.Marshal(id)
	in.values["content_guard_id"] = b
}
