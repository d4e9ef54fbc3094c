package models

import (
	"encoding/json"
	"errors"
	"fmt"

	"gorm.io/gorm"
)

// Object is any model the API renders.
type Object interface {
	Href() string
	Serialize(db *gorm.DB, host string) (map[string]any, error)
}

// Writable kinds, with the model that stores them.
var writable = map[Kind]func() Object{
	KindContainerRemote:       func() Object { return &Remote{PulpType: KindContainerRemote.PulpType} },
	KindPullThroughRemote:     func() Object { return &Remote{PulpType: KindPullThroughRemote.PulpType} },
	KindContainerRepository:   func() Object { return &Repository{PulpType: KindContainerRepository.PulpType} },
	KindPushRepository:        func() Object { return &Repository{PulpType: KindPushRepository.PulpType} },
	KindContainerDistribution: func() Object { return &Distribution{PulpType: KindContainerDistribution.PulpType} },
	KindPullThroughDist:       func() Object { return &Distribution{PulpType: KindPullThroughDist.PulpType} },
	KindNamespace:             func() Object { return &Namespace{} },
	KindContentRedirectGuard:  func() Object { return &ContentGuard{PulpType: KindContentRedirectGuard.PulpType} },
}

// KindByName finds a kind by its Model name ("ContainerRemote"); task payloads name kinds so.
func KindByName(model string) (Kind, bool) {
	for k := range writable {
		if k.Model == model {
			return k, true
		}
	}
	return Kind{}, false
}

// Get loads the object of kind k with id.
func Get(db *gorm.DB, k Kind, id string) (Object, error) {
	newObj, ok := writable[k]
	if !ok {
		return nil, fmt.Errorf("models: %s is not an object kind", k.Model)
	}
	if !ValidID(id) {
		return nil, &NotFoundError{Model: k.Model, Ref: id}
	}
	obj := newObj()
	q := db.Where("id = ?", id)
	if k != KindNamespace {
		q = q.Where("pulp_type = ?", k.PulpType)
	}
	err := q.Take(obj).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, &NotFoundError{Model: k.Model, Ref: id}
	}
	return obj, err
}

// Create stores a new object of kind k from values (JSON keyed by the model's json tags, as the
// API validated them) and returns it.
func Create(tx *gorm.DB, k Kind, values json.RawMessage) (Object, error) {
	newObj, ok := writable[k]
	if !ok {
		return nil, fmt.Errorf("models: cannot create %s", k.Model)
	}
	obj := newObj()
	if err := json.Unmarshal(values, obj); err != nil {
		return nil, fmt.Errorf("decode %s: %w", k.Model, err)
	}
	now := Now()
	switch o := obj.(type) {
	case *Remote:
		o.ID, o.PulpCreated, o.PulpLastUpdated = NewID(), now, now
		if o.PulpLabels == nil {
			o.PulpLabels = Labels{}
		}
		return o, uniqueErr(tx.Create(o).Error)
	case *Repository:
		return o, uniqueErr(CreateRepository(tx, o))
	case *Distribution:
		o.ID, o.PulpCreated, o.PulpLastUpdated = NewID(), now, now
		if o.PulpLabels == nil {
			o.PulpLabels = Labels{}
		}
		ns, err := EnsureNamespace(tx, o.BasePath)
		if err != nil {
			return nil, err
		}
		o.NamespaceID = &ns
		if o.ContentGuardID == nil {
			g, err := EnsureDefaultContentGuard(tx)
			if err != nil {
				return nil, err
			}
			o.ContentGuardID = &g
		}
		return o, uniqueErr(tx.Create(o).Error)
	case *Namespace:
		o.ID, o.PulpCreated, o.PulpLastUpdated = NewID(), now, now
		if o.PulpLabels == nil {
			o.PulpLabels = Labels{}
		}
		return o, uniqueErr(tx.Create(o).Error)
	case *ContentGuard:
		o.ID, o.PulpCreated, o.PulpLastUpdated = NewID(), now, now
		return o, uniqueErr(tx.Create(o).Error)
	}
	return nil, fmt.Errorf("models: cannot create %T", obj)
}

// Update applies values (JSON keyed by the model's json tags) to the object of kind k with id.
func Update(tx *gorm.DB, k Kind, id string, values json.RawMessage) (Object, error) {
	obj, err := Get(tx, k, id)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(values, obj); err != nil {
		return nil, fmt.Errorf("decode %s: %w", k.Model, err)
	}
	now := Now()
	switch o := obj.(type) {
	case *Remote:
		o.PulpLastUpdated = now
	case *Repository:
		o.PulpLastUpdated = now
	case *Distribution:
		o.PulpLastUpdated = now
		ns, err := EnsureNamespace(tx, o.BasePath)
		if err != nil {
			return nil, err
		}
		o.NamespaceID = &ns
	case *Namespace:
		o.PulpLastUpdated = now
	case *ContentGuard:
		o.PulpLastUpdated = now
	}
	return obj, uniqueErr(tx.Select("*").Save(obj).Error)
}

// Delete removes the object of kind k with id, with the cascades Pulp applies.
func Delete(tx *gorm.DB, k Kind, id string) error {
	obj, err := Get(tx, k, id)
	if err != nil {
		return err
	}
	switch o := obj.(type) {
	case *Remote:
		if err := tx.Model(&Repository{}).Where("remote_id = ?", id).Update("remote_id", nil).Error; err != nil {
			return err
		}
		if err := tx.Model(&Distribution{}).Where("remote_id = ? AND pulp_type = ?", id, KindContainerDistribution.PulpType).
			Update("remote_id", nil).Error; err != nil {
			return err
		}
		return tx.Delete(&Remote{}, "id = ?", id).Error
	case *Repository:
		return DeleteRepository(tx, o.ID)
	case *Distribution:
		return DeleteDistribution(tx, o)
	case *Namespace:
		return DeleteNamespace(tx, o.ID)
	case *ContentGuard:
		return DeleteContentGuard(tx, o.ID)
	}
	return fmt.Errorf("models: cannot delete %T", obj)
}

// Changes returns the subset of values (JSON keyed by json tags) that differ from obj.
func Changes(obj Object, values map[string]json.RawMessage) (map[string]json.RawMessage, error) {
	cur, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var curMap map[string]json.RawMessage
	if err := json.Unmarshal(cur, &curMap); err != nil {
		return nil, err
	}
	out := map[string]json.RawMessage{}
	for k, v := range values {
		if !jsonEqual(curMap[k], v) {
			out[k] = v
		}
	}
	return out, nil
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if len(a) == 0 {
		a = json.RawMessage("null")
	}
	if len(b) == 0 {
		b = json.RawMessage("null")
	}
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return string(a) == string(b)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

// ErrNotUnique is returned when a write breaks a uniqueness constraint (a concurrent create
// with the same name, base path...).
var ErrNotUnique = errors.New("An object with the same unique field (name or base_path) already exists.")

func uniqueErr(err error) error {
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return ErrNotUnique
	}
	return err
}
