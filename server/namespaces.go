package server

import (
	"github.com/gin-gonic/gin"

	"github.com/pulpgo/pulpgo/gen"
	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/tasks"
)

var namespaceSerializer = &serializer{
	schema: "container.ContainerNamespace",
	kind:   models.KindNamespace,
	model:  &models.Namespace{},
	rules:  map[string]rule{"name": {unique: true, ident: true}},
	check: func(_ *Server, in *input, errs *models.ValidationError) {
		if n, ok := in.merged["name"].(string); ok && len(errs.Fields["name"]) == 0 && !models.ValidContainerBasePath(n) {
			errs.Add("name", "Namespace name contains forbidden characters.")
		}
	},
}

// PulpContainerNamespacesList lists namespaces.
func (s *Server) PulpContainerNamespacesList(c *gin.Context, _ gen.PulpContainerNamespacesListParams) {
	s.respond(c, list[models.Namespace](s, c, &models.ListSpec{
		Model:   &models.Namespace{},
		Columns: map[string]string{"name": "name", "pulp_created": "pulp_created", "pulp_last_updated": "pulp_last_updated", "pulp_id": "id"},
		Special: commonSpecial(models.KindNamespace, "namespaces"),
		Order:   "pulp_created DESC, id DESC",
	}))
}

// PulpContainerNamespacesCreate creates a namespace (201).
func (s *Server) PulpContainerNamespacesCreate(c *gin.Context) {
	s.respond(c, s.createNow(c, namespaceSerializer))
}

// PulpContainerNamespacesRead shows a namespace.
func (s *Server) PulpContainerNamespacesRead(c *gin.Context, id string, _ gen.PulpContainerNamespacesReadParams) {
	s.respond(c, s.readObject(c, models.KindNamespace, id))
}

// PulpContainerNamespacesDelete deletes a namespace and its distributions (task).
func (s *Server) PulpContainerNamespacesDelete(c *gin.Context, id string) {
	s.respond(c, s.deleteObject(c, models.KindNamespace, id, tasks.NameGeneralMultiDelete))
}
