package registry

import "github.com/pulpgo/pulpgo/models"

// appID returns the app status id of this process's content app, which the immediate tasks
// of pushes record so that they fail when the process is gone ("" until the process has
// reported its first heartbeat, or when nothing reports one).
func (r *Registry) appID() string {
	r.appMu.Lock()
	defer r.appMu.Unlock()
	if r.app == "" {
		r.app = models.AppID(r.cfg.DB, models.AppContent)
	}
	return r.app
}
