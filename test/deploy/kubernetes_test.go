package deploy

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// manifests are the decoded objects of docs/deploy/kubernetes, by kind.
type manifests struct {
	deployments []appsv1.Deployment
	jobs        []batchv1.Job
	services    []corev1.Service
	configMaps  map[string]corev1.ConfigMap
	secrets     map[string]corev1.Secret
	ingresses   []networkingv1.Ingress
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// loadManifests strictly decodes every document of every file in dir: an unknown or
// duplicated field, or a kind the deployment does not use, fails.
func loadManifests(t *testing.T, dir string) manifests {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	m := manifests{configMaps: map[string]corev1.ConfigMap{}, secrets: map[string]corev1.Secret{}}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range docSeparator.Split(string(b), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			where := filepath.Base(f) + " document " + string(rune('1'+i))
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			where += " (" + tm.APIVersion + " " + tm.Kind + ")"
			switch tm.APIVersion + " " + tm.Kind {
			case "apps/v1 Deployment":
				m.deployments = append(m.deployments, decodeStrict[appsv1.Deployment](t, where, doc))
			case "batch/v1 Job":
				m.jobs = append(m.jobs, decodeStrict[batchv1.Job](t, where, doc))
			case "v1 Service":
				m.services = append(m.services, decodeStrict[corev1.Service](t, where, doc))
			case "v1 ConfigMap":
				o := decodeStrict[corev1.ConfigMap](t, where, doc)
				m.configMaps[o.Name] = o
			case "v1 Secret":
				o := decodeStrict[corev1.Secret](t, where, doc)
				m.secrets[o.Name] = o
			case "networking.k8s.io/v1 Ingress":
				m.ingresses = append(m.ingresses, decodeStrict[networkingv1.Ingress](t, where, doc))
			default:
				t.Errorf("%s: unexpected kind %q %q", where, tm.APIVersion, tm.Kind)
			}
		}
	}
	return m
}

// decodeStrict decodes doc into a T, failing the test on an unknown or duplicated field.
func decodeStrict[T any](t *testing.T, where, doc string) T {
	t.Helper()
	var o T
	if err := yaml.UnmarshalStrict([]byte(doc), &o); err != nil {
		t.Errorf("%s: %v", where, err)
	}
	return o
}

func stripComments(doc string) string {
	var out []string
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestKubernetesManifests decodes docs/deploy/kubernetes strictly into k8s.io/api types and
// checks the deployment: the roles (api, 2 content, 2 workers, a migrate Job), each
// container's role, flags, variables (its own and those of the ConfigMaps and Secrets it
// names) and probes, the key file mounted where PULPGO_DB_ENCRYPTION_KEY says, non-root
// read-only containers with resource requests, and Services and the Ingress pointing at
// pods and ports that exist.
func TestKubernetesManifests(t *testing.T) {
	s := readSettings(t)
	m := loadManifests(t, filepath.Join(repoRoot(t), "docs", "deploy", "kubernetes"))

	replicas := map[string]int32{}
	pods := map[string]corev1.PodTemplateSpec{}
	for _, d := range m.deployments {
		if d.Spec.Selector == nil || !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("Deployment %s: its selector does not select its own pods", d.Name)
		}
		n := int32(1)
		if d.Spec.Replicas != nil {
			n = *d.Spec.Replicas
		}
		role := checkPod(t, s, m, "Deployment "+d.Name, d.Spec.Template.Spec, true)
		replicas[role] += n
		pods[d.Name] = d.Spec.Template
	}
	for _, j := range m.jobs {
		if role := checkPod(t, s, m, "Job "+j.Name, j.Spec.Template.Spec, false); role != "migrate" {
			t.Errorf("Job %s runs %q, want migrate", j.Name, role)
		}
	}
	if want := map[string]int32{"api": 1, "content": 2, "worker": 2}; !maps.Equal(replicas, want) {
		t.Errorf("replicas by role: %v, want %v", replicas, want)
	}
	if len(m.jobs) != 1 {
		t.Errorf("%d Jobs, want one (migrate)", len(m.jobs))
	}

	servicePorts := map[string]map[string]bool{}
	for _, svc := range m.services {
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		var matched []corev1.PodTemplateSpec
		for _, p := range pods {
			if len(svc.Spec.Selector) > 0 && sel.Matches(labels.Set(p.Labels)) {
				matched = append(matched, p)
			}
		}
		if len(matched) != 1 {
			t.Errorf("Service %s selects %d Deployments' pods, want 1", svc.Name, len(matched))
			continue
		}
		servicePorts[svc.Name] = map[string]bool{}
		for _, sp := range svc.Spec.Ports {
			servicePorts[svc.Name][sp.Name] = true
			if !containerHasPort(matched[0].Spec.Containers[0], sp.TargetPort.String()) {
				t.Errorf("Service %s port %s: target %s is no port of its pods", svc.Name, sp.Name, sp.TargetPort.String())
			}
		}
	}
	routed := map[string]string{}
	for _, ing := range m.ingresses {
		for _, r := range ing.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for _, p := range r.HTTP.Paths {
				b := p.Backend.Service
				if b == nil || !servicePorts[b.Name][b.Port.Name] {
					t.Errorf("Ingress %s path %s: backend %+v is no Service port", ing.Name, p.Path, b)
					continue
				}
				routed[p.Path] = b.Name
			}
		}
	}
	for path, svc := range map[string]string{"/pulp/api/v3/": "pulpgo-api", "/v2": "pulpgo-content", "/token": "pulpgo-content"} {
		if routed[path] != svc {
			t.Errorf("Ingress routes %s to %q, want %s", path, routed[path], svc)
		}
	}
}

// checkPod checks the one pulpgo container of a pod and returns its role.
func checkPod(t *testing.T, s settings, m manifests, where string, pod corev1.PodSpec, long bool) string {
	t.Helper()
	if len(pod.Containers) != 1 {
		t.Errorf("%s: %d containers, want the one pulpgo", where, len(pod.Containers))
		return ""
	}
	c := pod.Containers[0]
	where += " container " + c.Name
	p := process{where: where, args: append(append([]string{}, c.Command...), c.Args...), env: map[string]string{}, ports: map[string]int{}}
	for _, e := range c.Env {
		p.env[e.Name] = e.Value
	}
	for _, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			cm, ok := m.configMaps[from.ConfigMapRef.Name]
			if !ok {
				t.Errorf("%s: envFrom ConfigMap %q is not in the manifests", where, from.ConfigMapRef.Name)
			}
			data = cm.Data
		case from.SecretRef != nil:
			sec, ok := m.secrets[from.SecretRef.Name]
			if !ok {
				t.Errorf("%s: envFrom Secret %q is not in the manifests", where, from.SecretRef.Name)
			}
			data = maps.Collect(func(yield func(string, string) bool) {
				for k, v := range sec.StringData {
					yield(k, v)
				}
				for k, v := range sec.Data {
					yield(k, string(v))
				}
			})
		}
		maps.Copy(p.env, data)
	}
	for _, cp := range c.Ports {
		p.ports[cp.Name] = int(cp.ContainerPort)
	}
	for kind, pr := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
		if pr == nil {
			if long && kind != "startup" {
				t.Errorf("%s: no %s probe", where, kind)
			}
			continue
		}
		if pr.HTTPGet == nil {
			t.Errorf("%s: %s probe is not an HTTP GET", where, kind)
			continue
		}
		p.probes = append(p.probes, probe{kind, pr.HTTPGet.Path, pr.HTTPGet.Port.String()})
	}
	p.check(t, s)

	if key := p.env["PULPGO_DB_ENCRYPTION_KEY"]; key == "" || !podMountsSecretKey(m, pod, c, key) {
		t.Errorf("%s: PULPGO_DB_ENCRYPTION_KEY %q is not a file mounted from a Secret of the manifests holding that key", where, key)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Errorf("%s: no CPU and memory requests", where)
	}
	psc, sc := pod.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s: the pod does not run as a non-root user", where)
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: want a read-only root filesystem and no privilege escalation", where)
	}
	if dd := firstNonEmpty(p.env["PULPGO_DATA_DIR"], "./data"); !mounted(c, dd) {
		t.Errorf("%s: the data dir %s is on the read-only root filesystem: mount a volume there", where, dd)
	}
	if len(p.args) == 0 {
		return ""
	}
	return p.args[0]
}

func containerHasPort(c corev1.Container, port string) bool {
	for _, cp := range c.Ports {
		if cp.Name == port || fmtInt(cp.ContainerPort) == port {
			return true
		}
	}
	return false
}

func fmtInt(n int32) string { return strconv.Itoa(int(n)) }

// mounted reports whether path is on a volume mount of c.
func mounted(c corev1.Container, path string) bool {
	for _, vm := range c.VolumeMounts {
		if path == vm.MountPath || strings.HasPrefix(path, strings.TrimSuffix(vm.MountPath, "/")+"/") {
			return true
		}
	}
	return false
}

// podMountsSecretKey reports whether file is a key of a Secret of m mounted in c.
func podMountsSecretKey(m manifests, pod corev1.PodSpec, c corev1.Container, file string) bool {
	for _, vm := range c.VolumeMounts {
		dir, name := filepath.Split(file)
		if filepath.Clean(dir) != filepath.Clean(vm.MountPath) {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name != vm.Name || v.Secret == nil {
				continue
			}
			sec, ok := m.secrets[v.Secret.SecretName]
			_, inString := sec.StringData[name]
			_, inData := sec.Data[name]
			if ok && (inString || inData) {
				return true
			}
		}
	}
	return false
}
