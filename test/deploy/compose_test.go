package deploy

import (
	"context"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// pulpgoImage is the image of the compose file's pulpgo services.
const pulpgoImage = "localhost/pulpgo:latest"

// testAdminPassword is the admin password given to the compose file's interpolation.
const testAdminPassword = "deploy-test-admin"

// composeFile is docs/deploy/compose.yaml.
func composeFile(t testing.TB) string {
	return filepath.Join(repoRoot(t), "docs", "deploy", "compose.yaml")
}

// loadCompose loads the compose file with compose-go as `docker compose config` does
// (schema validation, interpolation from env, merge keys, consistency checks), from the
// local file only: no remote resource loader is given, so nothing is fetched.
func loadCompose(ctx context.Context, t testing.TB, env map[string]string) (*types.Project, error) {
	file := composeFile(t)
	return loader.LoadWithContext(ctx, types.ConfigDetails{
		WorkingDir:  filepath.Dir(file),
		ConfigFiles: []types.ConfigFile{{Filename: file}},
		Environment: env,
	}, func(o *loader.Options) { o.ResourceLoaders = nil })
}

// pulpgoServices returns the compose services that run pulpgo, by name.
func pulpgoServices(p *types.Project) map[string]types.ServiceConfig {
	out := map[string]types.ServiceConfig{}
	for name, s := range p.Services {
		if s.Image == pulpgoImage {
			out[name] = s
		}
	}
	return out
}

// composeProcess turns a compose service into the process the checks see.
func composeProcess(t testing.TB, name string, s types.ServiceConfig) process {
	t.Helper()
	p := process{where: "compose service " + name, args: append(append([]string{}, s.Entrypoint...), s.Command...), env: map[string]string{}}
	for k, v := range s.Environment {
		if v != nil {
			p.env[k] = *v
		}
	}
	if hc := s.HealthCheck; hc != nil && !hc.Disable {
		for _, a := range hc.Test {
			if u, err := url.Parse(a); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
				if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" {
					t.Errorf("%s: healthcheck asks %s, not the container itself", p.where, u.Host)
				}
				p.probes = append(p.probes, probe{"healthcheck", u.Path, u.Port()})
			}
		}
	}
	return p
}

// TestCompose loads docs/deploy/compose.yaml with compose-go and checks the topology: the
// services an operator needs (PostgreSQL, Redis, SeaweedFS and its bucket, migrate, api, two
// content processes, two workers, a load balancer), each pulpgo service's role, flags,
// variables and healthcheck, its key secret, its data volume, and the order of start.
func TestCompose(t *testing.T) {
	s := readSettings(t)
	if _, err := loadCompose(t.Context(), t, nil); err == nil || !strings.Contains(err.Error(), "PULPGO_ADMIN_PASSWORD") {
		t.Errorf("compose file loaded without PULPGO_ADMIN_PASSWORD (err %v): it must refuse to start with no admin password set", err)
	}
	p, err := loadCompose(t.Context(), t, map[string]string{"PULPGO_ADMIN_PASSWORD": testAdminPassword})
	if err != nil {
		t.Fatalf("load %s: %v", composeFile(t), err)
	}
	for _, name := range []string{"postgres", "redis", "seaweedfs", "bucket", "lb"} {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("no service %s", name)
		}
	}
	// The bucket service creates the bucket the pulpgo services store in.
	for name, svc := range pulpgoServices(p) {
		storage := ""
		if v := svc.Environment["PULPGO_STORAGE"]; v != nil {
			storage = *v
		}
		bucket, _, _ := strings.Cut(strings.TrimPrefix(storage, "s3://"), "/")
		if create := strings.Join(p.Services["bucket"].Entrypoint, " "); bucket == "" || !strings.Contains(create, "s3.bucket.create -name "+bucket+"'") {
			t.Errorf("compose service %s stores in %q, which the bucket service (%s) does not create", name, storage, create)
		}
	}
	roleCount := map[string]int{}
	for name, svc := range pulpgoServices(p) {
		proc := composeProcess(t, name, svc)
		proc.check(t, s)
		if len(proc.args) == 0 {
			continue
		}
		role := proc.args[0]
		roleCount[role]++
		if proc.env["PULPGO_ADMIN_PASSWORD"] != testAdminPassword {
			t.Errorf("%s: PULPGO_ADMIN_PASSWORD is %q, want the interpolated one", proc.where, proc.env["PULPGO_ADMIN_PASSWORD"])
		}
		key := proc.env["PULPGO_DB_ENCRYPTION_KEY"]
		secret, ok := strings.CutPrefix(key, "/run/secrets/")
		_, declared := p.Secrets[secret]
		if !ok || !declared || !slices.ContainsFunc(svc.Secrets, func(r types.ServiceSecretConfig) bool { return r.Source == secret }) {
			t.Errorf("%s: PULPGO_DB_ENCRYPTION_KEY %q is not a secret of the service", proc.where, key)
		}
		if role == "migrate" {
			continue
		}
		if proc.probes == nil {
			t.Errorf("%s: no healthcheck", proc.where)
		}
		if dep, ok := svc.DependsOn["migrate"]; !ok || dep.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s: does not wait for migrate to complete", proc.where)
		}
		dataDir := proc.env["PULPGO_DATA_DIR"]
		if svc.ReadOnly && !slices.ContainsFunc(svc.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == dataDir }) {
			t.Errorf("%s: read-only with no volume at the data dir %q", proc.where, dataDir)
		}
	}
	if want := map[string]int{"migrate": 1, "api": 1, "content": 2, "worker": 2}; !maps.Equal(roleCount, want) {
		t.Errorf("pulpgo services by role: %v, want %v", roleCount, want)
	}
	// Pushes on S3: the content processes share the upload directory (docs/operations.md).
	var uploads []string
	for name, svc := range pulpgoServices(p) {
		for _, v := range svc.Volumes {
			if v.Target == "/var/lib/pulpgo/s3-local/.uploads" {
				uploads = append(uploads, name+"="+v.Source)
			}
		}
	}
	slices.Sort(uploads)
	if want := []string{"content-1=uploads", "content-2=uploads"}; !slices.Equal(uploads, want) {
		t.Errorf("upload volumes %v, want %v: the content processes must share one", uploads, want)
	}
}
