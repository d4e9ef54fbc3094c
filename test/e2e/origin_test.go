package e2e_test

import (
	"os"
	"testing"

	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// TestContentOrigin checks --content-origin (Pulp's CONTENT_ORIGIN): /status/ shows it, and a
// distribution's registry_path in its create task's result (no request host there) starts
// with its host, while reads keep the request's host.
func TestContentOrigin(t *testing.T) {
	t.Parallel()
	srv := harness.Start(t, harness.Options{Engine: testenv.Embedded(), Binary: os.Getenv(binaryEnv),
		Args: []string{"--content-origin", "https://registry.example.test:8443"}})
	api := newAPIClient(srv.URL, harness.Username, harness.Password)
	status := api.get(t, apiRoot+"status/")
	settings, _ := status["content_settings"].(map[string]any)
	if settings["content_origin"] != "https://registry.example.test:8443" {
		t.Fatalf("status content_settings %v, want the content origin", settings)
	}
	task := api.async(t, "POST", distsPath, map[string]any{"name": "origin", "base_path": "origin"})
	result, _ := task["result"].(map[string]any)
	if result["registry_path"] != "registry.example.test:8443/origin" {
		t.Errorf("task result registry_path %v, want registry.example.test:8443/origin", result["registry_path"])
	}
	dist := api.get(t, createdResource(t, task))
	if want := srv.Addr + "/origin"; dist["registry_path"] != want {
		t.Errorf("read registry_path %v, want the request host's %s", dist["registry_path"], want)
	}
}
