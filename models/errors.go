package models

import (
	"errors"
	"fmt"
)

// NotFoundError says that no object of Kind matches Ref; Model is Pulp's model class name
// ("ContainerRemote"), used in Pulp's 404 message.
type NotFoundError struct {
	Model string
	Ref   string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("No %s matches the given query.", e.Model)
}

// ValidationError is a Pulp-style 400: messages per field ("non_field_errors" for the object).
type ValidationError struct {
	Fields map[string][]string
	// Body, when set, is rendered instead of Fields (Pulp nests a few errors differently).
	Body any
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("validation failed: %v", e.Fields)
}

// Add records msg for field.
func (e *ValidationError) Add(field, msg string) {
	if e.Fields == nil {
		e.Fields = map[string][]string{}
	}
	e.Fields[field] = append(e.Fields[field], msg)
}

// Err returns e if it holds any message, else nil.
func (e *ValidationError) Err() error {
	if len(e.Fields) == 0 && e.Body == nil {
		return nil
	}
	return e
}

// Response is what the API renders for e.
func (e *ValidationError) Response() any {
	if e.Body != nil {
		return e.Body
	}
	return e.Fields
}

// NewValidationError returns a ValidationError with one message.
func NewValidationError(field, msg string) *ValidationError {
	e := &ValidationError{}
	e.Add(field, msg)
	return e
}

// ErrReadOnly is returned for a change to a repository that only the pull-through cache may
// change.
var ErrReadOnly = errors.New("Repository is read-only.")

// IsNotFound reports whether err is a *NotFoundError.
func IsNotFound(err error) bool {
	var nf *NotFoundError
	return errors.As(err, &nf)
}

// PulpError is an error Pulp raises as a PulpException: a task that fails with one records
// its code as the error's error_code, and its text starts with the code in brackets.
type PulpError struct {
	Code    string
	Message string
}

func (e *PulpError) Error() string { return "[" + e.Code + "] " + e.Message }

// ErrOnlyVersion is Pulp's RepositoryVersionDeleteError: a repository keeps one version at least.
var ErrOnlyVersion = &PulpError{Code: "PLP0011",
	Message: "Cannot delete repository version. Repositories must have at least one repository version."}
