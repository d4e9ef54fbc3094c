package models_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
)

func ptr[T any](v T) *T { return &v }

// TestAdminIsFirstUser: migrating creates the admin as user 1, a superuser without a stored
// password, and migrating again adds no second admin.
func TestAdminIsFirstUser(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		if err := models.Migrate(db); err != nil {
			t.Fatal(err)
		}
		var users []models.User
		if err := db.Find(&users).Error; err != nil {
			t.Fatal(err)
		}
		if len(users) != 1 || users[0].ID != 1 || users[0].Username != "admin" || !users[0].IsSuperuser ||
			!users[0].IsStaff || !users[0].IsActive || users[0].Password != "" {
			t.Fatalf("users after migrate: %+v", users)
		}
		u, err := models.CreateUser(db, models.UserChanges{Username: ptr("alice"), Password: ptr("s3cret-pass")})
		if err != nil {
			t.Fatal(err)
		}
		if u.ID != 2 || u.IsSuperuser || !u.IsActive || u.IsStaff {
			t.Fatalf("alice: %+v", u)
		}
	})
}

// TestUserPasswordsHashed stores a salted bcrypt hash, never the password, and checks it,
// passwords beyond bcrypt's 72 bytes included.
func TestUserPasswordsHashed(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		long := strings.Repeat("x", 80)
		a, err := models.CreateUser(db, models.UserChanges{Username: ptr("alice"), Password: ptr(long + "1")})
		if err != nil {
			t.Fatal(err)
		}
		b, err := models.CreateUser(db, models.UserChanges{Username: ptr("bob"), Password: ptr(long + "1")})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(a.Password, "xxxx") || !strings.HasPrefix(a.Password, "bcrypt_sha256$$2a$10$") {
			t.Fatalf("stored form %q", a.Password)
		}
		if a.Password == b.Password {
			t.Fatal("two users with one password have the same hash: no salt")
		}
		if !models.CheckPassword(a.Password, long+"1") || models.CheckPassword(a.Password, long+"2") ||
			models.CheckPassword("", "") || models.CheckPassword(a.Password, "") {
			t.Fatal("CheckPassword accepts the wrong password or refuses the right one")
		}
	})
}

// TestUsernamesUnique refuses a second user with a name, on create and on rename.
func TestUsernamesUnique(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		if _, err := models.CreateUser(db, models.UserChanges{Username: ptr("alice")}); err != nil {
			t.Fatal(err)
		}
		if _, err := models.CreateUser(db, models.UserChanges{Username: ptr("alice")}); !errors.Is(err, models.ErrNotUnique) {
			t.Fatalf("second alice: %v, want ErrNotUnique", err)
		}
		bob, err := models.CreateUser(db, models.UserChanges{Username: ptr("bob")})
		if err != nil {
			t.Fatal(err)
		}
		if taken, err := models.UsernameTaken(db, "alice", bob.ID); err != nil || !taken {
			t.Fatalf("alice taken for bob: %v %v", taken, err)
		}
		if err := models.UpdateUser(db, bob, models.UserChanges{Username: ptr("alice")}); !errors.Is(err, models.ErrNotUnique) {
			t.Fatalf("renaming bob to alice: %v, want ErrNotUnique", err)
		}
	})
}

// TestAdminProtected: the admin's name, password and active flag come from the configuration,
// and it cannot be deleted.
func TestAdminProtected(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		admin, err := models.GetUser(db, "1")
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range []models.UserChanges{{Username: ptr("root")}, {Password: ptr("another-pass")},
			{ClearPassword: true}, {IsActive: ptr(false)}} {
			if err := models.UpdateUser(db, admin, ch); !errors.Is(err, models.ErrAdminUser) {
				t.Errorf("update %+v: %v, want ErrAdminUser", ch, err)
			}
		}
		if err := models.UpdateUser(db, admin, models.UserChanges{Email: ptr("admin@example.com")}); err != nil {
			t.Fatal(err)
		}
		if err := models.DeleteUser(db, admin); !errors.Is(err, models.ErrAdminUser) {
			t.Fatalf("delete admin: %v", err)
		}
		for _, id := range []string{"0", "01", "x", "-1", "99"} {
			if _, err := models.GetUser(db, id); !models.IsNotFound(err) {
				t.Errorf("GetUser(%q): %v, want not found", id, err)
			}
		}
	})
}

// TestLogins authenticates active users by password and the admin by the configured one; a
// deactivated or deleted user is refused once the remembered login is forgotten.
func TestLogins(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		alice, err := models.CreateUser(db, models.UserChanges{Username: ptr("alice"), Password: ptr("alice-pass")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := models.CreateUser(db, models.UserChanges{Username: ptr("nopass")}); err != nil {
			t.Fatal(err)
		}
		l := models.NewLogins(db, "admin-pass", 0)
		if p, err := l.Authenticate(ctx, "admin", "admin-pass"); err != nil || !p.Superuser || p.ID != 1 {
			t.Fatalf("admin: %+v %v", p, err)
		}
		if p, err := l.Authenticate(ctx, "alice", "alice-pass"); err != nil || p.Superuser || p.ID != alice.ID || p.Username != "alice" {
			t.Fatalf("alice: %+v %v", p, err)
		}
		for _, c := range [][2]string{{"admin", ""}, {"admin", "alice-pass"}, {"alice", "admin-pass"}, {"alice", ""},
			{"nopass", ""}, {"nobody", "alice-pass"}, {"Alice", "alice-pass"}} {
			if _, err := l.Authenticate(ctx, c[0], c[1]); !errors.Is(err, models.ErrBadCredentials) {
				t.Errorf("%s:%s: %v, want ErrBadCredentials", c[0], c[1], err)
			}
		}
		if p, err := l.Lookup(ctx, "alice"); err != nil || p.Username != "alice" {
			t.Fatalf("lookup alice: %+v %v", p, err)
		}
		if _, err := l.Lookup(ctx, "nobody"); !errors.Is(err, models.ErrNoSuchUser) {
			t.Fatalf("lookup nobody: %v", err)
		}
		if err := models.UpdateUser(db, alice, models.UserChanges{IsActive: ptr(false)}); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Authenticate(ctx, "alice", "alice-pass"); err != nil {
			t.Fatalf("alice is remembered for the TTL: %v", err)
		}
		l.Forget()
		if _, err := l.Authenticate(ctx, "alice", "alice-pass"); !errors.Is(err, models.ErrBadCredentials) {
			t.Fatalf("inactive alice: %v", err)
		}
		if _, err := l.Lookup(ctx, "alice"); !errors.Is(err, models.ErrNoSuchUser) {
			t.Fatalf("lookup inactive alice: %v", err)
		}
		if _, err := models.NewLogins(db, "", -1).Authenticate(ctx, "admin", ""); !errors.Is(err, models.ErrBadCredentials) {
			t.Fatalf("empty admin password logs in: %v", err)
		}
	})
}

// TestPasswordAndNameRules are Django's validators that Pulp applies.
func TestPasswordAndNameRules(t *testing.T) {
	for pw, n := range map[string]int{"short": 1, "12345678": 1, "1234": 2, "long enough": 0, "١٢٣٤٥٦٧٨": 1} {
		if got := models.PasswordErrors(pw); len(got) != n {
			t.Errorf("PasswordErrors(%q) = %q, want %d messages", pw, got, n)
		}
	}
	for name, ok := range map[string]bool{"alice": true, "a.b@c+d-e_f": true, "élise": true, "a b": false, "a/b": false, "": false, "a:b": false} {
		if got := models.UsernameError(name) == ""; got != ok {
			t.Errorf("UsernameError(%q) valid=%v, want %v", name, got, ok)
		}
	}
	for email, ok := range map[string]bool{"a@example.com": true, "a.b+c@sub.example.org": true, "a@localhost": true,
		"a": false, "a@": false, "@b.com": false, "a@b": false, "a b@c.com": false} {
		if got := models.EmailError(email) == ""; got != ok {
			t.Errorf("EmailError(%q) valid=%v, want %v", email, got, ok)
		}
	}
}
