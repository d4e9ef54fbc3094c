package server

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/tasks"
)

// dispatch enqueues a task and answers 202 {"task": href}, exactly as Pulp does.
func (s *Server) dispatch(c *gin.Context, nt models.NewTask) error {
	nt.LoggingCID = c.GetString(cidKey)
	user := caller(c).Href()
	nt.CreatedBy = &user
	t, err := s.deps.Tasks.Dispatch(c, nt)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusAccepted, map[string]string{"task": t.Href()})
}

func valuesJSON(in *input) json.RawMessage {
	b, _ := json.Marshal(in.values)
	return b
}

// createNow creates an object synchronously: 201 with the object and its Location.
func (s *Server) createNow(c *gin.Context, ser *serializer) error {
	in, err := s.bind(c, ser, modeCreate, nil)
	if err != nil {
		return err
	}
	var obj models.Object
	err = s.db.WithContext(c).Transaction(func(tx *gorm.DB) error {
		var err error
		obj, err = models.Create(tx, ser.kind, valuesJSON(in))
		return err
	})
	if err == models.ErrNotUnique {
		return models.NewValidationError("name", "This field must be unique.")
	}
	if err != nil {
		return err
	}
	c.Header("Location", obj.Href())
	return s.renderObject(c, http.StatusCreated, obj)
}

// createTask validates a create and dispatches it as general_create (distributions).
func (s *Server) createTask(c *gin.Context, ser *serializer, exclusive, shared []string) error {
	in, err := s.bind(c, ser, modeCreate, nil)
	if err != nil {
		return err
	}
	return s.dispatch(c, models.NewTask{Name: tasks.NameGeneralCreate, Exclusive: exclusive, Shared: shared,
		Args: tasks.ObjectArgs{Kind: ser.kind.Model, Values: valuesJSON(in)}})
}

// getObject loads kind k's object id; a malformed id or a missing object is Pulp's 404.
func (s *Server) getObject(c *gin.Context, k models.Kind, id string) (models.Object, error) {
	if !models.ValidID(id) {
		return nil, errNotFound
	}
	return models.Get(s.db.WithContext(c), k, id)
}

// readObject answers GET on an object.
func (s *Server) readObject(c *gin.Context, k models.Kind, id string) error {
	obj, err := s.getObject(c, k, id)
	if err != nil {
		return err
	}
	return s.renderObject(c, http.StatusOK, obj)
}

// updateObject answers PUT/PATCH: 200 with the object when nothing changes, else 202 with an
// ageneral_update task holding only the changed values.
func (s *Server) updateObject(c *gin.Context, ser *serializer, id string, m mode) error {
	obj, err := s.getObject(c, ser.kind, id)
	if err != nil {
		return err
	}
	if rep, ok := obj.(*models.Repository); ok && rep.PullThrough {
		return models.ErrReadOnly
	}
	in, err := s.bind(c, ser, m, obj)
	if err != nil {
		return err
	}
	changes, err := models.Changes(obj, in.values)
	if err != nil {
		return err
	}
	if len(changes) == 0 {
		return s.renderObject(c, http.StatusOK, obj)
	}
	b, _ := json.Marshal(changes)
	return s.dispatch(c, models.NewTask{Name: tasks.NameGeneralUpdate, Exclusive: []string{ser.kind.PRNOf(id)},
		Args: tasks.ObjectArgs{Kind: ser.kind.Model, ID: id, Values: b}})
}

// deleteObject answers DELETE with a task named name.
func (s *Server) deleteObject(c *gin.Context, k models.Kind, id, name string) error {
	if _, err := s.getObject(c, k, id); err != nil {
		return err
	}
	return s.dispatch(c, models.NewTask{Name: name, Exclusive: []string{k.PRNOf(id)},
		Args: tasks.ObjectArgs{Kind: k.Model, ID: id}})
}

var setLabelSerializer = &serializer{schema: "SetLabel"}

var unsetLabelSerializer = &serializer{schema: "UnsetLabel"}

// setLabel answers set_label: 201 {"key", "value"}, synchronously, as Pulp does.
func (s *Server) setLabel(c *gin.Context, k models.Kind, id string) error {
	obj, err := s.getObject(c, k, id)
	if err != nil {
		return err
	}
	in, err := s.bind(c, setLabelSerializer, modeCreate, nil)
	if err != nil {
		return err
	}
	key, _ := in.merged["key"].(string)
	value, _ := in.merged["value"].(string)
	msg := labelKeyError(key)
	if msg == "" {
		msg = labelValueError(key, value)
	}
	if msg != "" {
		// Pulp checks the pair in the serializer's validate(): a non-field error.
		return models.NewValidationError("non_field_errors", msg)
	}
	if err := s.editLabels(c, obj, func(l models.Labels) { l[key] = value }); err != nil {
		return err
	}
	return writeJSON(c, http.StatusCreated, map[string]any{"key": key, "value": in.merged["value"]})
}

// unsetLabel answers unset_label: 201 {"key", "value"} with the removed value.
func (s *Server) unsetLabel(c *gin.Context, k models.Kind, id string) error {
	obj, err := s.getObject(c, k, id)
	if err != nil {
		return err
	}
	in, err := s.bind(c, unsetLabelSerializer, modeCreate, nil)
	if err != nil {
		return err
	}
	key, _ := in.merged["key"].(string)
	var old any
	found := false
	err = s.editLabels(c, obj, func(l models.Labels) {
		if v, ok := l[key]; ok {
			old, found = v, true
			delete(l, key)
		}
	})
	if err != nil {
		return err
	}
	if !found {
		return models.NewValidationError("key", "Label '"+key+"' is not set on the object.")
	}
	return writeJSON(c, http.StatusCreated, map[string]any{"key": key, "value": old})
}

func (s *Server) editLabels(c *gin.Context, obj models.Object, edit func(models.Labels)) error {
	return s.db.WithContext(c).Transaction(func(tx *gorm.DB) error {
		var labels *models.Labels
		switch o := obj.(type) {
		case *models.Remote:
			labels = &o.PulpLabels
		case *models.Repository:
			labels = &o.PulpLabels
		case *models.Distribution:
			labels = &o.PulpLabels
		case *models.Namespace:
			labels = &o.PulpLabels
		}
		if *labels == nil {
			*labels = models.Labels{}
		}
		edit(*labels)
		return tx.Model(obj).Updates(map[string]any{"pulp_labels": *labels, "pulp_last_updated": models.Now()}).Error
	})
}
