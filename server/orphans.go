package server

import (
	"github.com/gin-gonic/gin"

	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/tasks"
)

// orphansCleanupSerializer reads an orphan cleanup request: content_hrefs (limit the cleanup
// to these) and orphan_protection_time (minutes; null: the server's setting).
var orphansCleanupSerializer = &serializer{schema: "OrphansCleanup", check: checkOrphansCleanup}

// checkOrphansCleanup resolves content_hrefs to content ids as pulpcore's
// OrphansCleanupSerializer.validate_content_hrefs does: [] is refused, and the first href
// that names no content unit is the field's error.
func checkOrphansCleanup(s *Server, in *input, errs *models.ValidationError) {
	if !in.present["content_hrefs"] || len(errs.Fields["content_hrefs"]) > 0 {
		return
	}
	hrefs, _ := in.merged["content_hrefs"].([]string)
	if len(hrefs) == 0 {
		errs.Add("content_hrefs", "Must not be [].")
		return
	}
	ids := make([]string, 0, len(hrefs))
	for _, h := range hrefs {
		r, ok := models.ParseRef(h)
		if id, malformed := models.MalformedID(h); !ok && malformed {
			errs.Add("content_hrefs", "ID invalid: "+id)
			return
		}
		if !ok {
			errs.Add("content_hrefs", "URI not valid: "+h)
			return
		}
		ids = append(ids, r.ID)
		if r.Version != nil {
			errs.Add("content_hrefs", "URI "+h+" not found for content.")
			return
		}
		found, err := models.FindContent(s.db, []string{r.ID})
		if err != nil || len(found) == 0 {
			errs.Add("content_hrefs", "URI "+h+" not found for content.")
			return
		}
	}
	in.merged["content_hrefs"] = ids
}

// OrphansCleanupCleanup starts the removal of content in no repository version (task
// orphan_cleanup, reserving the domain's orphans exclusively, as Pulp).
func (s *Server) OrphansCleanupCleanup(c *gin.Context) {
	s.respond(c, s.orphansCleanup(c))
}

func (s *Server) orphansCleanup(c *gin.Context) error {
	in, err := s.bind(c, orphansCleanupSerializer, modeCreate, nil)
	if err != nil {
		return err
	}
	args := tasks.OrphanArgs{OrphanProtectionTime: s.orphanProtection()}
	if v, ok := in.merged["orphan_protection_time"].(int64); ok {
		args.OrphanProtectionTime = v
	}
	if ids, ok := in.merged["content_hrefs"].([]string); ok && in.present["content_hrefs"] {
		args.ContentIDs = ids
	}
	return s.dispatch(c, models.NewTask{Name: tasks.NameOrphanCleanup,
		Exclusive: []string{"pdrn:" + models.DefaultDomainID + ":orphans"}, Args: args})
}

// orphanProtection is the server's orphan protection time in minutes (Pulp's
// ORPHAN_PROTECTION_TIME).
func (s *Server) orphanProtection() int64 {
	if s.deps.OrphanProtectionTime != nil {
		return *s.deps.OrphanProtectionTime
	}
	return models.DefaultOrphanProtectionMinutes
}
