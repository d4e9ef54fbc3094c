package deploy

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// repoRoot is the repository's root directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// roles are pulpgo's commands, and the address each listens on by default ("" = none).
var roles = map[string]string{"serve": ":24817", "api": ":24817", "content": ":24816", "worker": "", "migrate": ""}

// probePaths are the health probes every listening role serves (cmd/pulpgo/health.go).
var probePaths = map[string]bool{"/livez": true, "/readyz": true}

// settings are the flags and PULPGO_* variables of the README's settings table.
type settings struct {
	flags map[string]bool
	env   map[string]bool
}

var (
	envName  = regexp.MustCompile(`PULPGO_[A-Z0-9_]+`)
	flagName = regexp.MustCompile("`(--[a-z0-9-]+)")
)

// readSettings parses the README's settings table: every row's flags and variables.
func readSettings(t testing.TB) settings {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := settings{flags: map[string]bool{}, env: map[string]bool{}}
	for _, line := range strings.Split(string(b), "\n") {
		cols := strings.Split(line, "|")
		if len(cols) < 4 || !strings.Contains(cols[2], "PULPGO_") {
			continue
		}
		for _, m := range flagName.FindAllStringSubmatch(cols[1], -1) {
			s.flags[m[1]] = true
		}
		for _, m := range envName.FindAllString(cols[2], -1) {
			s.env[m] = true
		}
	}
	if len(s.env) < 30 || !s.flags["--listen"] || !s.env["PULPGO_DATABASE_URL"] {
		t.Fatalf("README settings table: parsed %d variables and %d flags, want the whole table", len(s.env), len(s.flags))
	}
	return s
}

// process is one pulpgo container of a deployment file, reduced to what the checks need.
type process struct {
	where string            // the file and the service or container
	args  []string          // the command line after the binary
	env   map[string]string // PULPGO_* and other variables
	// ports maps the container's port names (Kubernetes) to numbers.
	ports  map[string]int
	probes []probe
}

// probe is a health check of the process: an HTTP GET of path on port (a number or a name).
type probe struct {
	kind, path, port string
}

// listens returns the ports the process listens on: the main listener and --metrics-listen.
func (p process) listens(t testing.TB) map[int]string {
	t.Helper()
	out := map[int]string{}
	add := func(what, addr string) {
		if addr == "" {
			return
		}
		_, port, err := net.SplitHostPort(addr)
		n, err2 := strconv.Atoi(port)
		if err != nil || err2 != nil {
			t.Errorf("%s: %s %q is not host:port", p.where, what, addr)
			return
		}
		out[n] = what
	}
	role := p.args[0]
	if roles[role] != "" {
		add("--listen", firstNonEmpty(flagValue(p.args, "--listen"), p.env["PULPGO_LISTEN"], roles[role]))
	}
	add("--metrics-listen", firstNonEmpty(flagValue(p.args, "--metrics-listen"), p.env["PULPGO_METRICS_LISTEN"]))
	return out
}

// check reports every way p is not a pulpgo process pulpgo would run with its probes
// answered: an unknown role, flag or variable, a probe of a path or port nothing serves.
func (p process) check(t testing.TB, s settings) {
	t.Helper()
	if len(p.args) == 0 {
		t.Errorf("%s: no command: name a pulpgo role", p.where)
		return
	}
	if _, ok := roles[p.args[0]]; !ok {
		t.Errorf("%s: %q is not a pulpgo role", p.where, p.args[0])
		return
	}
	for _, a := range p.args[1:] {
		name, _, _ := strings.Cut(a, "=")
		if strings.HasPrefix(name, "--") && !s.flags[name] {
			t.Errorf("%s: flag %s is not a pulpgo setting (README table)", p.where, name)
		}
	}
	for k := range p.env {
		if strings.HasPrefix(k, "PULPGO_") && !s.env[k] {
			t.Errorf("%s: variable %s is not a pulpgo setting (README table)", p.where, k)
		}
		if !strings.HasPrefix(k, "PULPGO_") && !strings.HasPrefix(k, "AWS_") {
			t.Errorf("%s: variable %s is neither PULPGO_* nor AWS_*: pulpgo reads nothing else", p.where, k)
		}
	}
	listens := p.listens(t)
	if p.args[0] != "migrate" && len(listens) == 0 {
		t.Errorf("%s: the %s role listens nowhere: give it --metrics-listen for its probes", p.where, p.args[0])
	}
	for _, pr := range p.probes {
		if !probePaths[pr.path] {
			t.Errorf("%s: %s probe of %q: pulpgo serves the probes %v", p.where, pr.kind, pr.path, keys(probePaths))
		}
		port, err := strconv.Atoi(pr.port)
		if err != nil {
			n, ok := p.ports[pr.port]
			if !ok {
				t.Errorf("%s: %s probe port %q is no port of the container", p.where, pr.kind, pr.port)
				continue
			}
			port = n
		}
		if _, ok := listens[port]; !ok {
			t.Errorf("%s: %s probe on port %d, where the process does not listen (it does on %v)", p.where, pr.kind, port, listens)
		}
	}
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestProcessCheck: the checks catch what they are for (each case one mistake).
func TestProcessCheck(t *testing.T) {
	s := readSettings(t)
	good := func() process {
		return process{where: "good", args: []string{"content", "--listen", ":24816"},
			env: map[string]string{"PULPGO_REDIS_URL": "redis://r"}, ports: map[string]int{"http": 24816},
			probes: []probe{{"readiness", "/readyz", "http"}}}
	}
	for _, tc := range []struct {
		name   string
		change func(*process)
		want   string
	}{
		{"good", func(*process) {}, ""},
		{"unknown role", func(p *process) { p.args[0] = "contnet" }, "is not a pulpgo role"},
		{"unknown flag", func(p *process) { p.args = append(p.args, "--listen-addr", "x") }, "flag --listen-addr"},
		{"unknown variable", func(p *process) { p.env["PULPGO_REDIS"] = "x" }, "variable PULPGO_REDIS"},
		{"foreign variable", func(p *process) { p.env["REDIS_URL"] = "x" }, "variable REDIS_URL"},
		{"probe path", func(p *process) { p.probes[0].path = "/healthz" }, `probe of "/healthz"`},
		{"probe port", func(p *process) { p.ports["http"] = 8080 }, "probe on port 8080"},
		{"probe port name", func(p *process) { p.probes[0].port = "web" }, `port "web"`},
		{"worker without listener", func(p *process) { p.args = []string{"worker"}; p.probes = nil }, "listens nowhere"},
		{"worker probe", func(p *process) { p.args = []string{"worker", "--metrics-listen", ":9090"} }, "probe on port 24816"},
	} {
		p := good()
		tc.change(&p)
		r := &recorder{TB: t}
		p.check(r, s)
		got := strings.Join(r.errs, "\n")
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("%s: reported %q, want %q", tc.name, got, tc.want)
		}
	}
}

// recorder collects the errors of a check instead of failing the test.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) Helper() {}
