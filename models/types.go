package models

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"time"
)

// TimeFormat is Pulp's timestamp format: RFC 3339, UTC, always six fractional digits.
const TimeFormat = "2006-01-02T15:04:05.000000Z"

// Now returns the current time in UTC truncated to microseconds, the precision Pulp keeps and
// both SQLite and PostgreSQL store exactly.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// FormatTime renders t as Pulp does.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// FormatTimePtr renders t as Pulp does, or nil for a nil time.
func FormatTimePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return FormatTime(*t)
}

// Labels are pulp_labels: string keys to string values, stored as canonical JSON (sorted keys)
// so that label selectors can be answered with LIKE on both database engines.
type Labels map[string]string

// Value implements driver.Valuer.
func (l Labels) Value() (driver.Value, error) {
	if l == nil {
		return "{}", nil
	}
	b, err := json.Marshal(map[string]string(l))
	return string(b), err
}

// Scan implements sql.Scanner.
func (l *Labels) Scan(src any) error {
	*l = Labels{}
	b, err := scanBytes(src)
	if err != nil || len(b) == 0 {
		return err
	}
	return json.Unmarshal(b, (*map[string]string)(l))
}

// StringList is a nullable list of strings stored as JSON: nil is NULL, empty is [].
type StringList []string

// Value implements driver.Valuer.
func (s StringList) Value() (driver.Value, error) {
	if s == nil {
		return nil, nil
	}
	b, err := json.Marshal([]string(s))
	return string(b), err
}

// Scan implements sql.Scanner.
func (s *StringList) Scan(src any) error {
	*s = nil
	b, err := scanBytes(src)
	if err != nil || b == nil {
		return err
	}
	return json.Unmarshal(b, (*[]string)(s))
}

// JSON is an arbitrary JSON value stored as text; nil is SQL NULL and JSON null.
type JSON json.RawMessage

// Value implements driver.Valuer.
func (j JSON) Value() (driver.Value, error) {
	if len(j) == 0 || string(j) == "null" {
		return nil, nil
	}
	return string(j), nil
}

// Scan implements sql.Scanner.
func (j *JSON) Scan(src any) error {
	b, err := scanBytes(src)
	if err != nil {
		return err
	}
	if b == nil {
		*j = nil
		return nil
	}
	*j = append((*j)[:0], b...)
	return nil
}

// MarshalJSON implements json.Marshaler.
func (j JSON) MarshalJSON() ([]byte, error) {
	if len(j) == 0 {
		return []byte("null"), nil
	}
	return j, nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (j *JSON) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*j = nil
		return nil
	}
	*j = append((*j)[:0], b...)
	return nil
}

// Any decodes the value for embedding in a response (nil for NULL).
func (j JSON) Any() any {
	if len(j) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(j, &v); err != nil {
		return nil
	}
	return v
}

// MustJSON encodes v, which must be encodable.
func MustJSON(v any) JSON {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("models: encode %T: %v", v, err))
	}
	return JSON(b)
}

func scanBytes(src any) ([]byte, error) {
	switch v := src.(type) {
	case nil:
		return nil, nil
	case []byte:
		return append([]byte(nil), v...), nil
	case string:
		return []byte(v), nil
	default:
		return nil, fmt.Errorf("models: cannot scan %T into a JSON column", src)
	}
}

func strPtrAny(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func listAny(s StringList) any {
	if s == nil {
		return nil
	}
	return []string(s)
}

func jsonString(s string) (string, error) {
	b, err := json.Marshal(s)
	return string(b), err
}
