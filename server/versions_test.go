package server_test

import (
	"testing"
)

// TestDeleteOnlyVersion: the task deleting a repository's only version fails as Pulp's does,
// with RepositoryVersionDeleteError's text and its error_code.
func TestDeleteOnlyVersion(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		repo := e.create(repositories, map[string]any{"name": "only-version"})
		r := e.del(repo["latest_version_href"].(string))
		if r.Status != 202 {
			t.Fatalf("delete version 0: %d %s", r.Status, r.Body)
		}
		task := e.waitTask(r.obj(t)["task"].(string))
		errObj, _ := task["error"].(map[string]any)
		want := "[PLP0011] Cannot delete repository version. Repositories must have at least one repository version."
		if task["state"] != "failed" || errObj["description"] != want || errObj["error_code"] != "PLP0011" {
			t.Errorf("task: %v %v", task["state"], task["error"])
		}
	})
}
