package models

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"
)

// AdminUsername is the user that the admin password (--admin-password) logs in: the superuser
// every installation has, row id 1 as in a fresh Pulp.
const AdminUsername = "admin"

// usersEndpoint is the path of users in the API; user ids are integers, as Django's.
const usersEndpoint = "/pulp/api/v3/users/"

// User is an API user, as Django's auth.User that Pulp uses. Password holds the hash of the
// password ("" when the user has none and cannot log in with one); the admin's password is not
// stored: it comes from the configuration at every start.
type User struct {
	ID        int64  `gorm:"primaryKey;autoIncrement"`
	Username  string `gorm:"size:150;uniqueIndex;not null"`
	Password  string `gorm:"size:128;not null;default:''"`
	FirstName string `gorm:"size:150;not null;default:''"`
	LastName  string `gorm:"size:150;not null;default:''"`
	Email     string `gorm:"size:254;not null;default:''"`
	// The flags have no SQL default: gorm would write the default instead of a false.
	IsStaff     bool      `gorm:"not null"`
	IsActive    bool      `gorm:"not null"`
	IsSuperuser bool      `gorm:"not null"`
	DateJoined  time.Time `gorm:"not null"`
}

// UserHref is the pulp_href of the user with id.
func UserHref(id int64) string { return usersEndpoint + strconv.FormatInt(id, 10) + "/" }

// Href is u's pulp_href.
func (u *User) Href() string { return UserHref(u.ID) }

// Serialize renders u as pulpcore's UserResponse. The password is never shown; like Pulp,
// hidden_fields says it is set whatever the user has (Django stores an unusable password as a
// non-empty string). Groups are not implemented: always empty.
func (u *User) Serialize(_ *gorm.DB, _ string) (map[string]any, error) {
	return map[string]any{
		"pulp_href":     u.Href(),
		"prn":           "prn:auth.user:" + strconv.FormatInt(u.ID, 10),
		"id":            u.ID,
		"username":      u.Username,
		"first_name":    u.FirstName,
		"last_name":     u.LastName,
		"email":         u.Email,
		"is_staff":      u.IsStaff,
		"is_active":     u.IsActive,
		"date_joined":   FormatTime(u.DateJoined),
		"groups":        []any{},
		"hidden_fields": []any{map[string]any{"name": "password", "is_set": true}},
	}, nil
}

// UserChanges are the values of a user create or update; a nil field is left as it is (on
// create: its default). Password is the new password in clear; ClearPassword removes it.
type UserChanges struct {
	Username      *string
	Password      *string
	ClearPassword bool
	FirstName     *string
	LastName      *string
	Email         *string
	IsStaff       *bool
	IsActive      *bool
}

// ErrAdminUser refuses a change that would lock the admin out: its name, password (which
// comes from --admin-password), active flag and existence are fixed.
var ErrAdminUser = errors.New("the admin user's name, password and active flag come from the configuration")

// ensureAdmin creates the admin's row when it is missing: on a fresh database it is the first
// row, id 1.
func ensureAdmin(tx *gorm.DB) error {
	// Migrations run one at a time (withMigrationLock): look, then insert, so that a second
	// migration spends no id.
	var n int64
	if err := tx.Model(&User{}).Where("username = ?", AdminUsername).Count(&n).Error; err != nil || n > 0 {
		return err
	}
	admin := User{Username: AdminUsername, IsStaff: true, IsActive: true, IsSuperuser: true, DateJoined: Now()}
	// No transaction of its own: gorm's would hand the statement back to the pool rather than
	// to the connection holding the migration lock, whose unlock would then miss it.
	if err := tx.Session(&gorm.Session{SkipDefaultTransaction: true}).Create(&admin).Error; err != nil {
		return fmt.Errorf("create the admin user: %w", err)
	}
	return nil
}

// GetUser loads the user with id, given as the text of an href; anything else is not found.
func GetUser(db *gorm.DB, id string) (*User, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 || strconv.FormatInt(n, 10) != id {
		return nil, &NotFoundError{Model: "User", Ref: id}
	}
	var u User
	err = db.Take(&u, "id = ?", n).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, &NotFoundError{Model: "User", Ref: id}
	}
	if err != nil {
		return nil, fmt.Errorf("read user %s: %w", id, err)
	}
	return &u, nil
}

// UsernameTaken reports whether another user than id (0: none) has username.
func UsernameTaken(db *gorm.DB, username string, id int64) (bool, error) {
	var n int64
	err := db.Model(&User{}).Where("username = ? AND id <> ?", username, id).Count(&n).Error
	return n > 0, err
}

// CreateUser stores a new user; a duplicate username fails with ErrNotUnique.
func CreateUser(tx *gorm.DB, ch UserChanges) (*User, error) {
	u := &User{IsActive: true, DateJoined: Now()}
	if err := u.apply(ch); err != nil {
		return nil, err
	}
	if err := tx.Create(u).Error; err != nil {
		return nil, fmt.Errorf("create user %q: %w", u.Username, uniqueErr(err))
	}
	return u, nil
}

// UpdateUser applies ch to user u; the admin's name, password and active flag stay as they are
// (ErrAdminUser when ch would change them).
func UpdateUser(tx *gorm.DB, u *User, ch UserChanges) error {
	if u.Username == AdminUsername {
		if (ch.Username != nil && *ch.Username != u.Username) || ch.Password != nil || ch.ClearPassword ||
			(ch.IsActive != nil && !*ch.IsActive) {
			return ErrAdminUser
		}
	}
	if err := u.apply(ch); err != nil {
		return err
	}
	if err := tx.Select("*").Save(u).Error; err != nil {
		return fmt.Errorf("update user %d: %w", u.ID, uniqueErr(err))
	}
	return nil
}

// DeleteUser removes user u; the admin cannot be removed (ErrAdminUser). Tasks keep the href
// of the user who dispatched them.
func DeleteUser(tx *gorm.DB, u *User) error {
	if u.Username == AdminUsername {
		return ErrAdminUser
	}
	if err := tx.Delete(&User{}, "id = ?", u.ID).Error; err != nil {
		return fmt.Errorf("delete user %d: %w", u.ID, err)
	}
	return nil
}

func (u *User) apply(ch UserChanges) error {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&u.Username, ch.Username)
	set(&u.FirstName, ch.FirstName)
	set(&u.LastName, ch.LastName)
	set(&u.Email, ch.Email)
	if ch.IsStaff != nil {
		u.IsStaff = *ch.IsStaff
	}
	if ch.IsActive != nil {
		u.IsActive = *ch.IsActive
	}
	switch {
	case ch.ClearPassword:
		u.Password = ""
	case ch.Password != nil:
		h, err := HashPassword(*ch.Password)
		if err != nil {
			return err
		}
		u.Password = h
	}
	return nil
}

// passwordCost is bcrypt's work factor for stored passwords: about 50 ms of CPU per check, which
// logins pay once per LoginTTL thanks to Logins' memory.
const passwordCost = 10

// hashPrefix marks the stored form: bcrypt of the base64 SHA-256 of the password, as Django's
// BCryptSHA256PasswordHasher, so that passwords longer than bcrypt's 72 bytes count whole.
const hashPrefix = "bcrypt_sha256$"

// HashPassword returns the stored form of password.
func HashPassword(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword(preHash(password), passwordCost)
	if err != nil {
		return "", fmt.Errorf("hash a password: %w", err)
	}
	return hashPrefix + string(h), nil
}

// CheckPassword reports whether password matches the stored hash; an empty hash (no password)
// matches nothing.
func CheckPassword(hash, password string) bool {
	h, ok := strings.CutPrefix(hash, hashPrefix)
	if !ok {
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(h), preHash(password)) == nil
}

func preHash(password string) []byte {
	sum := sha256.Sum256([]byte(password))
	return []byte(base64.StdEncoding.EncodeToString(sum[:]))
}

// MinPasswordLength is Django's MinimumLengthValidator default, which Pulp enables.
const MinPasswordLength = 8

// PasswordErrors returns what Django's validators that Pulp enables say of password (Pulp
// reports them as non_field_errors): too short, entirely numeric. Django's list of 20,000
// common passwords is not checked (docs/api.md); the similarity validator does nothing in
// Pulp, which validates the password without its user.
func PasswordErrors(password string) []string {
	var msgs []string
	if n := len([]rune(password)); n < MinPasswordLength {
		msgs = append(msgs, fmt.Sprintf("This password is too short. It must contain at least %d characters.", MinPasswordLength))
	}
	if password != "" && strings.IndexFunc(password, func(r rune) bool { return !unicode.IsDigit(r) }) < 0 {
		msgs = append(msgs, "This password is entirely numeric.")
	}
	return msgs
}

// usernamePattern is Django's UnicodeUsernameValidator: letters, digits and @/./+/-/_.
var usernamePattern = regexp.MustCompile(`^[\p{L}\p{N}_.@+-]+$`)

// UsernameError returns Django's complaint about a username's characters, or "".
func UsernameError(username string) string {
	if !usernamePattern.MatchString(username) {
		return "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."
	}
	return ""
}

// emailPattern is a simplified form of Django's EmailValidator: a local part of atoms
// separated by dots, and a domain of dot-separated labels or "localhost".
var emailPattern = regexp.MustCompile(`^[-!#$%&'*+/=?^_` + "`" + `{}|~0-9A-Za-z]+(\.[-!#$%&'*+/=?^_` + "`" +
	`{}|~0-9A-Za-z]+)*@(localhost|([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,63})$`)

// EmailError returns DRF's EmailField complaint about a non-empty address, or "".
func EmailError(email string) string {
	if len(email) > 320 || !emailPattern.MatchString(email) {
		return "Enter a valid email address."
	}
	return ""
}
