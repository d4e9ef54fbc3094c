package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/gen"
	"github.com/pulpgo/pulpgo/models"
)

// userSerializer is pulpcore's UserSerializer: a unique username of Django's characters, an
// optional password (validated by the Django validators Pulp enables, stored hashed, never
// shown), names, email and the staff and active flags.
var userSerializer = &serializer{
	// No model: the values go through models.UserChanges, never straight into the row.
	schema:   "User",
	readOnly: []string{"id", "date_joined", "groups", "hidden_fields"},
	check:    checkUser,
}

// maxUserField is the max_length of Django's name fields.
const maxUserField = 150

// checkUser adds what the request schema cannot say: lengths, the username's characters and
// uniqueness, the email's form, and (as DRF's validate(), only when every field is valid) the
// password validators, whose messages are non-field errors.
func checkUser(s *Server, in *input, errs *models.ValidationError) {
	for _, name := range []string{"username", "first_name", "last_name"} {
		if v, ok := in.merged[name].(string); ok && in.present[name] && len(errs.Fields[name]) == 0 && utf8.RuneCountInString(v) > maxUserField {
			errs.Add(name, "Ensure this field has no more than 150 characters.")
		}
	}
	if name, ok := in.merged["username"].(string); ok && in.present["username"] && len(errs.Fields["username"]) == 0 {
		if msg := models.UsernameError(name); msg != "" {
			errs.Add("username", msg)
		} else {
			id, _ := strconv.ParseInt(in.id, 10, 64)
			taken, err := models.UsernameTaken(s.db, name, id)
			if err != nil || taken {
				errs.Add("username", "This field must be unique.")
			}
		}
	}
	if email, ok := in.merged["email"].(string); ok && in.present["email"] && email != "" && len(errs.Fields["email"]) == 0 {
		if msg := models.EmailError(email); msg != "" {
			errs.Add("email", msg)
		}
	}
	if pw, ok := in.merged["password"].(string); ok && in.present["password"] && len(errs.Fields) == 0 {
		for _, msg := range models.PasswordErrors(pw) {
			errs.Add("non_field_errors", msg)
		}
	}
}

// userListSpec filters users as pulpcore's UserViewSet does, newest first.
var userListSpec = &models.ListSpec{
	Model: &models.User{},
	Columns: map[string]string{"username": "username", "first_name": "first_name", "last_name": "last_name",
		"email": "email", "is_superuser": "is_superuser",
		"date_joined": "date_joined", "id": "id", "password": "password", "last_login": "id",
		"is_active": "is_active", "is_staff": "is_staff"},
	Special: map[string]models.FilterFunc{
		"is_active":     boolFilter("is_active"),
		"is_staff":      boolFilter("is_staff"),
		"pulp_href__in": userRefFilter(func(v string) (string, bool) { return strings.CutPrefix(v, "/pulp/api/v3/users/") }),
		"prn__in":       userRefFilter(func(v string) (string, bool) { return strings.CutPrefix(v, "prn:auth.user:") }),
		"pulp_id__in": func(q *gorm.DB, v string) (*gorm.DB, error) {
			return q.Where("id IN ?", userIDs(models.SplitList(v))), nil
		},
	},
	Order: "date_joined DESC, id DESC",
}

// boolFilter filters a boolean column by "true" or "false" (checkQuery has normalized the value).
func boolFilter(col string) models.FilterFunc {
	return func(q *gorm.DB, v string) (*gorm.DB, error) {
		return q.Where(col+" = ?", v == "true"), nil
	}
}

// userRefFilter filters by a list of user hrefs or PRNs, which cut reads the id of.
func userRefFilter(cut func(string) (string, bool)) models.FilterFunc {
	return func(q *gorm.DB, v string) (*gorm.DB, error) {
		var ids []string
		for _, ref := range models.SplitList(v) {
			id, ok := cut(ref)
			if !ok {
				return nil, &models.BareListError{Msg: "URI couldn't be resolved: " + ref}
			}
			ids = append(ids, strings.TrimSuffix(id, "/"))
		}
		return q.Where("id IN ?", userIDs(ids)), nil
	}
}

// userIDs keeps the integer ids of a list (0 stands for none, so the list is never empty).
func userIDs(vals []string) []int64 {
	out := []int64{0}
	for _, v := range vals {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// UsersList lists users.
func (s *Server) UsersList(c *gin.Context, _ gen.UsersListParams) {
	s.respond(c, list[models.User](s, c, userListSpec))
}

// UsersCreate creates a user (201).
func (s *Server) UsersCreate(c *gin.Context) {
	s.respond(c, s.createUser(c))
}

// UsersRead shows a user.
func (s *Server) UsersRead(c *gin.Context, id string, _ gen.UsersReadParams) {
	u, err := models.GetUser(s.db.WithContext(c), id)
	if err != nil {
		s.respond(c, err)
		return
	}
	s.respond(c, s.renderObject(c, http.StatusOK, u))
}

// UsersUpdate replaces a user (200); as in Pulp, a PUT without a password removes it.
func (s *Server) UsersUpdate(c *gin.Context, id string) {
	s.respond(c, s.updateUser(c, id, modePut))
}

// UsersPartialUpdate patches a user (200).
func (s *Server) UsersPartialUpdate(c *gin.Context, id string) {
	s.respond(c, s.updateUser(c, id, modePatch))
}

// UsersDelete deletes a user (204); the admin stays.
func (s *Server) UsersDelete(c *gin.Context, id string) {
	u, err := models.GetUser(s.db.WithContext(c), id)
	if err == nil {
		err = models.DeleteUser(s.db.WithContext(c), u)
	}
	if err != nil {
		s.respond(c, adminUserErr(err))
		return
	}
	s.logins.Forget()
	c.Status(http.StatusNoContent)
}

func (s *Server) createUser(c *gin.Context) error {
	in, err := s.bind(c, userSerializer, modeCreate, nil)
	if err != nil {
		return err
	}
	u, err := models.CreateUser(s.db.WithContext(c), userChanges(in))
	if errors.Is(err, models.ErrNotUnique) {
		return models.NewValidationError("username", "This field must be unique.")
	}
	if err != nil {
		return err
	}
	c.Header("Location", u.Href())
	return s.renderObject(c, http.StatusCreated, u)
}

func (s *Server) updateUser(c *gin.Context, id string, m mode) error {
	u, err := models.GetUser(s.db.WithContext(c), id)
	if err != nil {
		return err
	}
	in, err := s.bind(c, userSerializer, m, u)
	if err != nil {
		return err
	}
	ch := userChanges(in)
	if m == modePut && !in.present["password"] && u.Username != models.AdminUsername {
		// DRF gives the absent password its default, None: an unusable password.
		ch.ClearPassword = true
	}
	err = models.UpdateUser(s.db.WithContext(c), u, ch)
	if errors.Is(err, models.ErrNotUnique) {
		return models.NewValidationError("username", "This field must be unique.")
	}
	if err != nil {
		return adminUserErr(err)
	}
	s.logins.Forget()
	return s.renderObject(c, http.StatusOK, u)
}

// userChanges reads the validated values of a user body.
func userChanges(in *input) models.UserChanges {
	var ch models.UserChanges
	str := func(key string) *string {
		var v *string
		if raw, ok := in.values[key]; ok {
			_ = json.Unmarshal(raw, &v)
		}
		return v
	}
	flag := func(key string) *bool {
		var v *bool
		if raw, ok := in.values[key]; ok {
			_ = json.Unmarshal(raw, &v)
		}
		return v
	}
	ch.Username, ch.FirstName, ch.LastName, ch.Email = str("username"), str("first_name"), str("last_name"), str("email")
	ch.IsStaff, ch.IsActive = flag("is_staff"), flag("is_active")
	if raw, ok := in.values["password"]; ok {
		ch.Password = str("password")
		ch.ClearPassword = string(raw) == "null"
	}
	return ch
}

// adminUserErr answers a change the admin user does not take with 400 and the reason.
func adminUserErr(err error) error {
	if errors.Is(err, models.ErrAdminUser) {
		return errDetail(http.StatusBadRequest, "The admin user's username, password and is_active come from the server's configuration (--admin-password), and it cannot be deleted.")
	}
	return err
}
