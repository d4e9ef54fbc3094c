package e2e_test

import (
	"os"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
)

// alicePassword is alice's password; it may appear in no output and not in the server's log.
const alicePassword = "pw-alice-Ke8sQ2wZ"

// TestPulpCLIUsers manages a user with pulp-cli (create, list, show, update, destroy), uses
// the user's credentials with pulp-cli (reads work, writes get 403) and with podman through the
// token flow: alice logs in, pulls from the private pull-through distribution of her namespace,
// is refused another user's, and can no longer log in once deleted.
func TestPulpCLIUsers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		needTools(t, "podman")
		p := &pulpCLI{e: e}
		t.Cleanup(func() {
			all := strings.Join(p.outputs, "\n")
			if log, err := os.ReadFile(e.srv.LogFile); err == nil {
				all += string(log)
			}
			if strings.Contains(all, alicePassword) {
				t.Errorf("alice's password appears in pulp-cli's output or the server's log")
			}
		})
		p.must(t, "--refresh-api", "status")

		created := p.object(t, "user", "create", "--username", "alice", "--password", alicePassword, "--email", "alice@example.com")
		wantFields(t, "created user", created, map[string]any{"username": "alice", "email": "alice@example.com",
			"is_active": true, "is_staff": false, "pulp_href": apiRoot + "users/2/"})
		if _, ok := created["password"]; ok || !hiddenFieldSet(created, "password") {
			t.Errorf("created user: password shown or hidden_fields wrong: %v", created)
		}
		var usernames []string
		for _, u := range p.list(t, "user", "list") {
			usernames = append(usernames, u["username"].(string))
		}
		if strings.Join(usernames, ",") != "alice,admin" {
			t.Errorf("user list: %v, want alice then admin", usernames)
		}
		wantFields(t, "shown user", p.object(t, "user", "show", "--username", "alice"), map[string]any{"id": float64(2)})
		p.must(t, "user", "update", "--username", "alice", "--first-name", "Alice")
		wantFields(t, "updated user", p.object(t, "user", "show", "--username", "alice"), map[string]any{"first_name": "Alice"})
		if r := p.fails(t, "user", "create", "--username", "alice", "--password", alicePassword); !strings.Contains(r.Stderr, "must be unique") {
			t.Errorf("duplicate user: stderr lacks the unique error:\n%s", r.Stderr)
		}
		if r := p.fails(t, "user", "create", "--username", "bob", "--password", "short"); !strings.Contains(r.Stderr, "too short") {
			t.Errorf("short password: stderr lacks Django's message:\n%s", r.Stderr)
		}

		// pulp-cli as alice: she reads, she changes nothing.
		asAlice := []string{"--username", "alice", "--password", alicePassword}
		p.must(t, append(asAlice, "container", "repository", "list")...)
		if r := p.fails(t, append(asAlice, "container", "repository", "create", "--name", "by-alice")...); !strings.Contains(r.Stderr, "not authorized") {
			t.Errorf("alice creating a repository: stderr lacks the 403:\n%s", r.Stderr)
		}
		p.fails(t, append(asAlice, "user", "list")...)

		// podman through the token flow.
		ctx := client.Context(t)
		hub := client.StartHub(t)
		img, err := hub.PushSmall(ctx, "library/busybox", "latest")
		if err != nil {
			t.Fatal(err)
		}
		api := &client.API{Base: e.srv.URL, HTTP: client.NewHTTPClient()}
		api.CreatePullThrough(t, "alice", "alice", hub.URL(), nil, map[string]any{"private": true})
		api.CreatePullThrough(t, "bob", "bob", hub.URL(), nil, map[string]any{"private": true})
		home := e.home
		home.PodmanEnv(t)
		reg := home.Addr
		if r := home.Run(t, "podman", "login", "-u", "alice", "-p", "wrong-"+alicePassword, reg); r.Code == 0 {
			t.Errorf("podman login with a wrong password succeeded")
		}
		home.Run(t, "podman", "login", "-u", "alice", "-p", alicePassword, reg).Must(t)
		home.Run(t, "podman", "pull", reg+"/alice/library/busybox").Must(t)
		if got := strings.TrimSpace(home.Run(t, "podman", "image", "inspect", "--format", "{{.Digest}}", reg+"/alice/library/busybox").Must(t).Stdout); got != img.ManifestDigest {
			t.Errorf("podman pulled %s, want %s", got, img.ManifestDigest)
		}
		if r := home.Run(t, "podman", "pull", reg+"/bob/library/busybox"); r.Code == 0 {
			t.Errorf("alice pulled from bob's private distribution")
		}
		home.Run(t, "podman", "logout", reg).Must(t)

		// In serve, the API and the registry share their memory of logins: the deletion counts at
		// once.
		p.must(t, "user", "destroy", "--username", "alice")
		p.fails(t, "user", "show", "--username", "alice")
		if r := home.Run(t, "podman", "login", "-u", "alice", "-p", alicePassword, reg); r.Code == 0 {
			t.Errorf("podman login of a deleted user succeeded")
		}
	})
}
