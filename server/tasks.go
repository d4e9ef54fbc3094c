package server

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/gen"
	"github.com/pulpgo/pulpgo/models"
)

func (s *Server) taskListSpec() *models.ListSpec {
	special := commonSpecial(models.KindTask, "tasks")
	resources := func(exclusive *bool) func(values []string) models.FilterFunc {
		return func(_ []string) models.FilterFunc {
			return func(q *gorm.DB, v string) (*gorm.DB, error) {
				var prns []string
				for _, ref := range models.SplitList(v) {
					r, ok := models.ParseRef(ref)
					if !ok {
						return nil, &models.BareListError{Msg: "URI couldn't be resolved: " + ref}
					}
					prns = append(prns, r.Kind.PRNOf(r.ID))
				}
				sub := s.db.Model(&models.TaskResource{}).Select("task_id").Where("resource IN ?", prns)
				if exclusive != nil {
					sub = sub.Where("exclusive = ?", *exclusive)
				}
				return q.Where("tasks.id IN (?)", sub), nil
			}
		}
	}
	yes, no := true, false
	for name, excl := range map[string]*bool{"reserved_resources": nil, "exclusive_resources": &yes, "shared_resources": &no} {
		special[name] = resources(excl)(nil)
		special[name+"__in"] = resources(excl)(nil)
	}
	special["created_resources"] = func(q *gorm.DB, v string) (*gorm.DB, error) {
		if err := s.checkURI(v); err != nil {
			return nil, err
		}
		return q.Where("created_resources LIKE ?", "%\""+v+"\"%"), nil
	}
	special["worker"] = func(q *gorm.DB, v string) (*gorm.DB, error) {
		r, ok := models.ParseRef(v)
		if !ok {
			return nil, &models.BareListError{Msg: "URI couldn't be resolved: " + v}
		}
		return q.Where("worker_id = ?", r.ID), nil
	}
	for _, name := range []string{"parent_task", "task_group", "child_tasks"} {
		special[name] = func(q *gorm.DB, _ string) (*gorm.DB, error) { return q.Where("1 = 0"), nil }
	}
	return &models.ListSpec{
		Model: &models.Task{},
		Columns: map[string]string{"state": "state", "name": "name", "logging_cid": "logging_cid",
			"pulp_created": "pulp_created", "pulp_last_updated": "pulp_last_updated", "started_at": "started_at",
			"finished_at": "finished_at", "unblocked_at": "unblocked_at", "pulp_id": "id"},
		Special: special,
		Order:   "pulp_created DESC, id DESC",
	}
}

// TasksList lists tasks, newest first.
func (s *Server) TasksList(c *gin.Context, _ gen.TasksListParams) {
	s.respond(c, list[models.Task](s, c, s.taskListSpec()))
}

// TasksRead shows a task.
func (s *Server) TasksRead(c *gin.Context, id string, _ gen.TasksReadParams) {
	t, err := s.getTask(c, id)
	if err == nil {
		err = s.renderObject(c, http.StatusOK, t)
	}
	s.respond(c, err)
}

// getTask loads task id; a malformed id or a missing task is Pulp's 404.
func (s *Server) getTask(c *gin.Context, id string) (*models.Task, error) {
	if !models.ValidID(id) {
		return nil, errNotFound
	}
	return models.GetTask(s.db.WithContext(c), id)
}

// cancelSerializer is Pulp's TaskCancelSerializer, whose state is required although its PATCH
// schema lists no required field.
var cancelSerializer = &serializer{schema: "PatchedTaskCancel", rules: map[string]rule{"state": {required: true}}}

// TasksCancel cancels a task: 200 with the task (canceled or canceling), 409 with the task if
// it had already finished.
func (s *Server) TasksCancel(c *gin.Context, id string) {
	s.respond(c, s.cancelTask(c, id))
}

func (s *Server) cancelTask(c *gin.Context, id string) error {
	if _, err := s.getTask(c, id); err != nil {
		return err
	}
	in, err := s.bind(c, cancelSerializer, modeCreate, nil)
	if err != nil {
		return err
	}
	if in.merged["state"] != models.TaskCanceled {
		return models.NewValidationError("state", "The only acceptable value for 'state' is 'canceled'.")
	}
	ok, err := models.CancelTask(s.db.WithContext(c), id)
	if err != nil {
		return err
	}
	t, err := models.GetTask(s.db, id)
	if err != nil {
		return err
	}
	code := http.StatusOK
	if !ok {
		code = http.StatusConflict
	}
	// A finished task's 409 carries the task, as Pulp's does: it is an answer, not an error.
	return s.renderObject(c, code, t)
}

// TasksDelete deletes a finished task: 204, or 409 (no body) while it is unfinished.
func (s *Server) TasksDelete(c *gin.Context, id string) {
	s.respond(c, s.deleteTask(c, id))
}

func (s *Server) deleteTask(c *gin.Context, id string) error {
	if _, err := s.getTask(c, id); err != nil {
		return err
	}
	ok, err := models.DeleteTask(s.db.WithContext(c), id)
	if err != nil {
		return err
	}
	if !ok {
		return &apiError{status: http.StatusConflict}
	}
	c.Status(http.StatusNoContent)
	return nil
}

// checkURI checks an href or PRN as Pulp's NamedModelViewSet.get_resource does: one that
// matches no URL is "URI not valid", one whose object does not exist "URI ... not found for
// <model>.".
func (s *Server) checkURI(v string) error {
	r, ok := models.ParseRef(v)
	if !ok {
		return &models.BareListError{Msg: "URI not valid: " + v}
	}
	if r.Version != nil {
		return nil
	}
	var nf *models.NotFoundError
	if _, err := models.Get(s.db, r.Kind, r.ID); errors.As(err, &nf) {
		return &models.BareListError{Msg: "URI " + v + " not found for " + strings.ToLower(r.Kind.Model) + "."}
	}
	return nil
}
