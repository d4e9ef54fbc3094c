package push

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestPushClients pushes with podman and skopeo (images built in the local Docker Hub of
// package upstream) and pulls back what was pushed.
func TestPushClients(t *testing.T) {
	client.NeedTools(t, "podman", "skopeo")
	ctx := client.Context(t)
	hub := client.StartHub(t)
	small, err := hub.PushSmall(ctx, "library/busybox", "latest")
	if err != nil {
		t.Fatal(err)
	}
	// Three layers of 64 MiB of random bytes each.
	big, err := hub.PushLarge(ctx, "library/big", "v1", 3*64, 3)
	if err != nil {
		t.Fatal(err)
	}
	multi, err := hub.PushIndex(ctx, "library/multi", "v1")
	if err != nil {
		t.Fatal(err)
	}
	hubAddr := strings.TrimPrefix(hub.URL(), "http://")

	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		srv := harness.Start(t, harness.Options{Engine: e, Binary: os.Getenv("PULPGO_TEST_BINARY")})
		api := &client.API{Base: srv.URL, HTTP: client.NewHTTPClient()}
		home := harness.NewClientHome(t, srv)
		home.PodmanEnv(t, srv.Addr, hubAddr)
		reg := srv.Addr
		creds := harness.Username + ":" + harness.Password
		copyTo := func(src, dst string, extra ...string) harness.Result {
			args := append([]string{"copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false"}, extra...)
			return home.Run(t, "skopeo", append(args, "docker://"+hubAddr+"/"+src, "docker://"+reg+"/"+dst)...)
		}

		// Without credentials nothing is pushed.
		if r := copyTo(small.Ref(), "anon/busybox:v1"); r.Code == 0 {
			t.Fatal("an anonymous skopeo push succeeded")
		} else if s := strings.ToLower(r.Stderr); !strings.Contains(s, "unauthorized") && !strings.Contains(s, "denied") {
			t.Errorf("anonymous push: stderr lacks \"unauthorized\" or \"denied\":\n%s", r.Stderr)
		}

		// podman login, push, and pull back by tag and by digest.
		home.Run(t, "podman", "login", "-u", harness.Username, "-p", harness.Password, reg).Must(t)
		home.Run(t, "podman", "pull", hubAddr+"/"+small.Ref()).Must(t)
		home.Run(t, "podman", "tag", hubAddr+"/"+small.Ref(), reg+"/team/busybox:v1").Must(t)
		digestFile := filepath.Join(home.Dir, "digest")
		home.Run(t, "podman", "push", "--digestfile", digestFile, reg+"/team/busybox:v1").Must(t)
		raw, err := os.ReadFile(digestFile)
		if err != nil {
			t.Fatal(err)
		}
		pushed := strings.TrimSpace(string(raw))
		home.Run(t, "podman", "rmi", "-a", "-f").Must(t)
		home.Run(t, "podman", "pull", reg+"/team/busybox:v1").Must(t)
		home.Run(t, "podman", "pull", reg+"/team/busybox@"+pushed).Must(t)

		// What the push created is in the API at once.
		if ns := api.List(t, "/pulp/api/v3/pulp_container/namespaces/", url.Values{"name": {"team"}}); len(ns) != 1 {
			t.Errorf("namespaces named team: %v", ns)
		}
		repos := api.List(t, "/pulp/api/v3/repositories/container/container/", url.Values{"name": {"team/busybox"}})
		dists := api.List(t, "/pulp/api/v3/distributions/container/container/", url.Values{"base_path": {"team/busybox"}})
		if len(repos) != 1 || len(dists) != 1 || dists[0]["repository"] != repos[0]["pulp_href"] || dists[0]["name"] != "team/busybox" {
			t.Fatalf("repository %v, distribution %v", repos, dists)
		}
		if !strings.HasSuffix(client.Str(repos[0], "latest_version_href"), "/versions/1/") {
			t.Errorf("latest version %v", repos[0]["latest_version_href"])
		}

		// skopeo: a large image (every blob read back and checked), then the same image into a
		// second repository, whose blobs are mounted rather than sent again.
		copyTo(big.Ref(), "team/big:v1", "--dest-creds", creds).Must(t)
		home.Run(t, "skopeo", "copy", "--quiet", "--src-tls-verify=false", "--src-creds", creds,
			"docker://"+reg+"/team/big:v1", "dir:"+filepath.Join(home.Dir, "big")).Must(t)
		got := home.Run(t, "skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", creds, "docker://"+reg+"/team/big:v1").Must(t).Stdout
		if client.Digest([]byte(got)) != big.ManifestDigest {
			t.Errorf("team/big:v1 is %s, pushed %s", client.Digest([]byte(got)), big.ManifestDigest)
		}
		copyTo(big.Ref(), "team/big2:v1", "--dest-creds", creds).Must(t)
		log, err := os.ReadFile(srv.LogFile)
		if err != nil {
			t.Fatal(err)
		}
		// Layers are mounted; the small config is sent again (containers/image reuses layers only).
		for _, b := range big.Layers {
			if strings.Contains(string(log), `msg="blob uploaded" repo=team/big2 digest=`+b.Digest) {
				t.Errorf("blob %s was uploaded again into team/big2, not mounted", b.Digest)
			}
		}
		if !strings.Contains(string(log), `msg="blob mounted" from=team/big`) {
			t.Errorf("no blob was mounted into team/big2")
		}

		// skopeo copy --all of a multi-arch index keeps its digest.
		copyTo(multi.Ref(), "team/multi:v1", "--all", "--dest-creds", creds).Must(t)
		got = home.Run(t, "skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", creds, "docker://"+reg+"/team/multi:v1").Must(t).Stdout
		if client.Digest([]byte(got)) != multi.ManifestDigest {
			t.Errorf("team/multi:v1 is %s, pushed %s", client.Digest([]byte(got)), multi.ManifestDigest)
		}

		// Deleting a tag (skopeo deletes the manifest it names).
		home.Run(t, "skopeo", "delete", "--tls-verify=false", "--creds", creds, "docker://"+reg+"/team/multi:v1").Must(t)
		if r := home.Run(t, "skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", creds, "docker://"+reg+"/team/multi:v1"); r.Code == 0 {
			t.Errorf("team/multi:v1 still answers after its deletion")
		}

		// A private repository: pulled with a login only.
		home.Run(t, "podman", "push", reg+"/team/busybox:v1", reg+"/team/private:v1").Must(t)
		priv := api.List(t, "/pulp/api/v3/distributions/container/container/", url.Values{"base_path": {"team/private"}})
		if len(priv) != 1 {
			t.Fatalf("distribution team/private: %v", priv)
		}
		status, body := api.Do(t, "PATCH", client.Str(priv[0], "pulp_href"), map[string]any{"private": true})
		if status != 202 {
			t.Fatalf("PATCH private: %d %s", status, body)
		}
		api.WaitTask(t, client.Str(client.DecodeObject(t, body), "task"))
		home.Run(t, "podman", "logout", reg).Must(t)
		home.Run(t, "podman", "rmi", "-a", "-f").Must(t)
		if r := home.Run(t, "podman", "pull", reg+"/team/private:v1"); r.Code == 0 {
			t.Error("anonymous pull of a private pushed repository succeeded")
		}
		home.Run(t, "podman", "pull", reg+"/team/busybox:v1").Must(t) // public: anonymous works
		home.Run(t, "podman", "login", "-u", harness.Username, "-p", harness.Password, reg).Must(t)
		home.Run(t, "podman", "pull", reg+"/team/private:v1").Must(t)

		// A user pushes into the namespace named after her, and nowhere else.
		status, body = api.Do(t, "POST", "/pulp/api/v3/users/", map[string]any{"username": "alice", "password": "alice-pushes-here"})
		if status != 201 {
			t.Fatalf("create alice: %d %s", status, body)
		}
		home.Run(t, "podman", "logout", reg).Must(t)
		home.Run(t, "podman", "login", "-u", "alice", "-p", "alice-pushes-here", reg).Must(t)
		home.Run(t, "podman", "tag", reg+"/team/busybox:v1", reg+"/alice/app:1", reg+"/team/app:1").Must(t)
		home.Run(t, "podman", "push", reg+"/alice/app:1").Must(t)
		if r := home.Run(t, "podman", "push", reg+"/team/app:1"); r.Code == 0 {
			t.Error("alice pushed into the team namespace")
		} else if s := strings.ToLower(r.Stderr); !strings.Contains(s, "unauthorized") && !strings.Contains(s, "denied") {
			t.Errorf("alice's push to team/app: stderr lacks \"unauthorized\" or \"denied\":\n%s", r.Stderr)
		}
		if got := api.List(t, "/pulp/api/v3/distributions/container/container/", url.Values{"base_path": {"team/app"}}); len(got) != 0 {
			t.Errorf("a refused push created %v", got)
		}
		if got := api.List(t, "/pulp/api/v3/distributions/container/container/", url.Values{"base_path": {"alice/app"}}); len(got) != 1 {
			t.Errorf("alice's push created no distribution alice/app: %v", got)
		}
		home.Run(t, "podman", "rmi", "-a", "-f").Must(t)
		home.Run(t, "podman", "pull", reg+"/alice/app:1").Must(t)
	})
}
