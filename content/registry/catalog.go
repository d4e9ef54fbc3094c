package registry

import (
	"fmt"
	"net/http"

	"github.com/pulpgo/pulpgo/models"
)

// serveCatalog answers GET /v2/_catalog: {"repositories": [...]}, the base paths of the
// container distributions (pull-through children included, pull-through distributions
// themselves not), sorted and paged with n and last. Private distributions, and the children
// of private pull-through distributions, are listed for superusers, and for other users in
// their own namespace (namespaceOwner); children of private pull-through distributions also
// for pull-only (htpasswd) users.
func (r *Registry) serveCatalog(w http.ResponseWriter, req *http.Request, c caller) {
	n, last := pageParams(req.URL.Query())
	names := []string{}
	if n > 0 {
		q := r.cfg.DB.WithContext(req.Context()).Model(&models.Distribution{}).
			Where("pulp_type <> ?", models.KindPullThroughDist.PulpType)
		if !c.admin {
			// A child of a private pull-through distribution is private too.
			privatePT := r.cfg.DB.Model(&models.Distribution{}).Select("id").
				Where("pulp_type = ? AND private = ?", models.KindPullThroughDist.PulpType, true)
			public := r.cfg.DB.Where("private = ? AND (pull_through_id IS NULL OR pull_through_id NOT IN (?))", false, privatePT)
			if c.pullOnly {
				// Pull-only users may pull the children of private pull-through distributions.
				public = public.Or("pull_through_id IS NOT NULL")
			} else if c.user != "" {
				// The caller's namespace: base_path is the username or starts with it and "/".
				public = public.Or("base_path = ? OR substr(base_path, 1, ?) = ?", c.user, len(c.user)+1, c.user+"/")
			}
			q = q.Where(public)
		}
		if last != "" {
			q = q.Where("base_path > ?", last)
		}
		if err := q.Order("base_path").Limit(n).Pluck("base_path", &names).Error; err != nil {
			r.writeError(w, req, fmt.Errorf("catalog: %w", err))
			return
		}
	}
	if names == nil {
		names = []string{}
	}
	setNextLink(w, "/v2/_catalog", n, names)
	writeJSON(w, req, map[string]any{"repositories": names})
}
