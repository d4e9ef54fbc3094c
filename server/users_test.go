package server_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

const users = api + "users/"

// userKeys are the fields of pulpcore's UserResponse.
var userKeys = []string{"date_joined", "email", "first_name", "groups", "hidden_fields", "id", "is_active",
	"is_staff", "last_name", "prn", "pulp_href", "username"}

// TestUsersCRUD creates, reads, lists, changes and deletes a user as pulpcore's users endpoint
// does; the admin is user 1, and passwords are never shown.
func TestUsersCRUD(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		list := e.get(users).expect(t, http.StatusOK).results(t)
		if len(list) != 1 || list[0]["username"] != "admin" || list[0]["id"] != float64(1) ||
			list[0]["pulp_href"] != users+"1/" || list[0]["prn"] != "prn:auth.user:1" || list[0]["is_staff"] != true {
			t.Fatalf("fresh list: %v", list)
		}
		r := e.post(users, map[string]any{"username": "alice", "password": "alice-secret-1", "first_name": "Alice",
			"email": "alice@example.com"}).expect(t, http.StatusCreated)
		alice := r.obj(t)
		if !reflect.DeepEqual(keysOf(alice), userKeys) {
			t.Fatalf("keys %v, want %v", keysOf(alice), userKeys)
		}
		if alice["id"] != float64(2) || alice["pulp_href"] != users+"2/" || r.Header.Get("Location") != users+"2/" ||
			alice["is_active"] != true || alice["is_staff"] != false || alice["first_name"] != "Alice" || alice["last_name"] != "" {
			t.Fatalf("created: %v (Location %s)", alice, r.Header.Get("Location"))
		}
		jsonEq(t, mustJSON(t, alice["hidden_fields"]), `[{"name":"password","is_set":true}]`)
		jsonEq(t, mustJSON(t, alice["groups"]), `[]`)
		for _, b := range [][]byte{r.Body, e.get(users).Body, e.get(href(alice)).Body} {
			if strings.Contains(string(b), "alice-secret-1") || strings.Contains(string(b), "bcrypt") {
				t.Fatalf("an answer shows the password: %s", b)
			}
		}
		e.get(users, withAuth("alice", "alice-secret-1")).expect(t, http.StatusForbidden)
		e.get(api+"tasks/", withAuth("alice", "alice-secret-1")).expect(t, http.StatusOK)

		p := e.patch(href(alice), map[string]any{"last_name": "Liddell", "password": "new-secret-2"}).expect(t, http.StatusOK).obj(t)
		if p["last_name"] != "Liddell" || p["first_name"] != "Alice" || p["date_joined"] != alice["date_joined"] {
			t.Fatalf("patched: %v", p)
		}
		e.get(api+"tasks/", withAuth("alice", "alice-secret-1")).expect(t, http.StatusUnauthorized)
		e.get(api+"tasks/", withAuth("alice", "new-secret-2")).expect(t, http.StatusOK)

		// A PUT leaves out what it does not name: first_name stays, the password goes (DRF's
		// default None), is_staff gets its default.
		u := e.put(href(alice), map[string]any{"username": "alice"}).expect(t, http.StatusOK).obj(t)
		if u["first_name"] != "Alice" || u["is_staff"] != false || u["is_active"] != true {
			t.Fatalf("put: %v", u)
		}
		e.get(api+"tasks/", withAuth("alice", "new-secret-2")).expect(t, http.StatusUnauthorized)

		e.patch(href(alice), map[string]any{"password": "third-secret-3", "is_active": false}).expect(t, http.StatusOK)
		e.get(api+"tasks/", withAuth("alice", "third-secret-3")).expect(t, http.StatusUnauthorized)
		e.patch(href(alice), map[string]any{"is_active": true}).expect(t, http.StatusOK)
		e.get(api+"tasks/", withAuth("alice", "third-secret-3")).expect(t, http.StatusOK)

		e.del(href(alice)).expect(t, http.StatusNoContent)
		e.get(href(alice)).bodyIs(t, http.StatusNotFound, `{"detail":"No User matches the given query."}`)
		e.get(api+"tasks/", withAuth("alice", "third-secret-3")).expect(t, http.StatusUnauthorized)
		for _, bad := range []string{"0", "x", "02", "99"} {
			e.get(users+bad+"/").expect(t, http.StatusNotFound)
		}
	})
}

// TestUsersValidation answers bad bodies with DRF's messages, field by field.
func TestUsersValidation(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		e.post(users, map[string]any{"username": "bob"}).expect(t, http.StatusCreated)
		for _, c := range []struct {
			body any
			want string
		}{
			{map[string]any{"username": "bob"}, `{"username":["This field must be unique."]}`},
			{map[string]any{"username": "admin"}, `{"username":["This field must be unique."]}`},
			{map[string]any{}, `{"username":["This field is required."]}`},
			{map[string]any{"username": ""}, `{"username":["This field may not be blank."]}`},
			{map[string]any{"username": "a b"}, `{"username":["Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."]}`},
			{map[string]any{"username": strings.Repeat("a", 151)}, `{"username":["Ensure this field has no more than 150 characters."]}`},
			{map[string]any{"username": "carol", "password": "short"}, `{"non_field_errors":["This password is too short. It must contain at least 8 characters."]}`},
			{map[string]any{"username": "carol", "password": "1234"}, `{"non_field_errors":["This password is too short. It must contain at least 8 characters.","This password is entirely numeric."]}`},
			{map[string]any{"username": "carol", "password": ""}, `{"password":["This field may not be blank."]}`},
			{map[string]any{"username": "carol", "email": "nope"}, `{"email":["Enter a valid email address."]}`},
			{map[string]any{"username": "carol", "is_staff": "maybe"}, `{"is_staff":["Must be a valid boolean."]}`},
			{map[string]any{"username": "carol", "is_superuser": true}, `{"is_superuser":["Unexpected field"]}`},
			{map[string]any{"username": "carol\u0000"}, `{"username":["Null characters are not allowed."]}`},
		} {
			e.post(users, c.body).bodyIs(t, http.StatusBadRequest, c.want)
		}
		// A password may be null: the user then has none and cannot log in with one.
		nopass := e.post(users, map[string]any{"username": "carol", "password": nil}).expect(t, http.StatusCreated).obj(t)
		e.get(api+"tasks/", withAuth("carol", "")).expect(t, http.StatusUnauthorized)
		e.patch(href(nopass), map[string]any{"username": "bob"}).bodyIs(t, http.StatusBadRequest, `{"username":["This field must be unique."]}`)
		e.patch(href(nopass), map[string]any{"username": "carol", "email": ""}).expect(t, http.StatusOK)

		// The admin's name, password and active flag come from the configuration.
		e.patch(users+"1/", map[string]any{"username": "root"}).expect(t, http.StatusBadRequest)
		e.patch(users+"1/", map[string]any{"password": "another-pass"}).expect(t, http.StatusBadRequest)
		e.patch(users+"1/", map[string]any{"is_active": false}).expect(t, http.StatusBadRequest)
		e.del(users+"1/").expect(t, http.StatusBadRequest)
		e.put(users+"1/", map[string]any{"username": "admin", "email": "admin@example.com"}).expect(t, http.StatusOK)
		e.get(users+"1/").expect(t, http.StatusOK)
	})
}

// TestUsersFilters filters and orders as pulpcore's UserViewSet.
func TestUsersFilters(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		e.post(users, map[string]any{"username": "alice", "email": "alice@example.com"}).expect(t, http.StatusCreated)
		e.post(users, map[string]any{"username": "Bob", "is_staff": true}).expect(t, http.StatusCreated)
		e.post(users, map[string]any{"username": "carol", "is_active": false}).expect(t, http.StatusCreated)
		for q, want := range map[string][]string{
			"":                               {"carol", "Bob", "alice", "admin"},
			"?username=alice":                {"alice"},
			"?username__iexact=bob":          {"Bob"},
			"?username__icontains=O":         {"carol", "Bob"},
			"?username__contains=B":          {"Bob"},
			"?username__in=alice,carol":      {"carol", "alice"},
			"?is_active=false":               {"carol"},
			"?is_staff=true":                 {"Bob", "admin"},
			"?email__icontains=EXAMPLE":      {"alice"},
			"?ordering=username":             {"Bob", "admin", "alice", "carol"},
			"?ordering=-id":                  {"carol", "Bob", "alice", "admin"},
			"?pulp_href__in=" + users + "2/": {"alice"},
			"?prn__in=prn:auth.user:1":       {"admin"},
		} {
			var got []string
			for _, u := range e.get(users+q).expect(t, http.StatusOK).results(t) {
				got = append(got, u["username"].(string))
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %v, want %v", q, got, want)
			}
		}
		e.get(users+"?ordering=nope").expect(t, http.StatusBadRequest)
		e.get(users+"?name=x").bodyIs(t, http.StatusBadRequest, `{"errors":["Invalid Filter: 'name'"]}`)
	})
}

// TestNonSuperuserPermissions: a user who is not a superuser may read objects and tasks but
// change nothing, and may not see users; Pulp's 403.
func TestNonSuperuserPermissions(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		e.post(users, map[string]any{"username": "alice", "password": "alice-secret-1"}).expect(t, http.StatusCreated)
		as := withAuth("alice", "alice-secret-1")
		denied := `{"detail":"You do not have permission to perform this action."}`
		for _, path := range []string{api + "tasks/", api + "remotes/container/container/", api + "repositories/",
			api + "distributions/container/container/", api + "content/container/manifests/"} {
			e.get(path, as).expect(t, http.StatusOK)
		}
		e.get(users, as).bodyIs(t, http.StatusForbidden, denied)
		e.get(users+"1/", as).bodyIs(t, http.StatusForbidden, denied)
		e.post(users, map[string]any{"username": "mallory"}, as).bodyIs(t, http.StatusForbidden, denied)
		e.post(api+"remotes/container/container/", map[string]any{"name": "r", "url": "https://x", "upstream_name": "a"}, as).
			bodyIs(t, http.StatusForbidden, denied)
		e.post(api+"repositories/container/container/", map[string]any{"name": "r"}, as).bodyIs(t, http.StatusForbidden, denied)
		e.del(api+"tasks/00000000-0000-0000-0000-000000000000/", as).bodyIs(t, http.StatusForbidden, denied)
		e.get(api+"tasks/", withAuth("alice", "wrong")).bodyIs(t, http.StatusUnauthorized, `{"detail":"Invalid username/password."}`)
		e.get(api+"tasks/", withAuth("nobody", "alice-secret-1")).expect(t, http.StatusUnauthorized)
		// The admin's password opens nothing for other names.
		e.get(api+"tasks/", withAuth("alice", adminPassword)).expect(t, http.StatusUnauthorized)
	})
}
