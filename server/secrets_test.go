package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
)

// rowsContaining returns the rows of table (all columns, as stored) in which one of secrets
// appears.
func rowsContaining(t *testing.T, db *gorm.DB, table string, secrets ...string) []string {
	t.Helper()
	var rows []map[string]any
	if err := db.Table(table).Find(&rows).Error; err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	var found []string
	for _, row := range rows {
		for col, v := range row {
			var s string
			switch x := v.(type) {
			case string:
				s = x
			case []byte:
				s = string(x)
			default:
				continue
			}
			for _, secret := range secrets {
				if strings.Contains(s, secret) {
					found = append(found, fmt.Sprintf("%s.%s of %v: %q", table, col, row["id"], s))
				}
			}
		}
	}
	return found
}

// TestRemoteSecretsNeverRest creates a remote with every secret field through the API, then
// changes its password with a PATCH (a task): neither the remotes nor the tasks table holds
// a secret in plaintext, no response shows one, and the remote reads the new password.
func TestRemoteSecretsNeverRest(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		first := map[string]string{"username": "u-Kx71", "password": "p-Kx72", "proxy_username": "pu-Kx73",
			"proxy_password": "pp-Kx74", "client_key": "ck-Kx75"}
		body := map[string]any{"name": "private", "url": "https://registry.example", "upstream_name": "team/app",
			"proxy_url": "http://proxy.example:3128"}
		all := []string{"p-Kx76"}
		for k, v := range first {
			body[k] = v
			all = append(all, v)
		}
		created := e.post(remotes, body).expect(t, http.StatusCreated)
		h := href(created.obj(t))
		id := strings.TrimSuffix(strings.TrimPrefix(h, remotes), "/")
		if found := rowsContaining(t, e.db, "remotes", all...); len(found) > 0 {
			t.Errorf("plaintext secrets in the remotes table after a create:\n%s", strings.Join(found, "\n"))
		}

		task := e.waitTaskOK(e.patch(h, map[string]any{"password": "p-Kx76"}).taskHref(t))
		if found := rowsContaining(t, e.db, "tasks", all...); len(found) > 0 {
			t.Errorf("plaintext secrets in the tasks table after a PATCH:\n%s", strings.Join(found, "\n"))
		}
		if found := rowsContaining(t, e.db, "remotes", all...); len(found) > 0 {
			t.Errorf("plaintext secrets in the remotes table after a PATCH:\n%s", strings.Join(found, "\n"))
		}
		// A PUT goes through the same task.
		put := map[string]any{"name": "private", "url": "https://registry.example", "upstream_name": "team/app",
			"password": "p-Kx77"}
		e.waitTaskOK(e.put(h, put).taskHref(t))
		all = append(all, "p-Kx77")
		if found := rowsContaining(t, e.db, "tasks", all...); len(found) > 0 {
			t.Errorf("plaintext secrets in the tasks table after a PUT:\n%s", strings.Join(found, "\n"))
		}

		obj, err := models.Get(e.db, models.KindContainerRemote, id)
		if err != nil {
			t.Fatal(err)
		}
		r := obj.(*models.Remote)
		if r.Password == nil || *r.Password != "p-Kx77" {
			t.Errorf("the remote's password reads %v after the update, want the new one", r.Password)
		}

		bodies := [][]byte{created.Body, mustJSON(t, task), e.get(h).expect(t, 200).Body,
			e.get(remotes).expect(t, 200).Body, e.get(taskList).expect(t, 200).Body}
		for i, b := range bodies {
			for _, s := range all {
				if strings.Contains(string(b), s) {
					t.Errorf("response %d shows secret %q: %s", i, s, b)
				}
			}
		}
	})
}
