package parity

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// conversation is one file of conversations/.
type conversation struct {
	Name  string `yaml:"conversation"`
	Steps []step `yaml:"steps"`
}

// step is one request, sent to both servers.
type step struct {
	Name   string `yaml:"name"`
	Method string `yaml:"method"`
	// Path may hold {{variables}}.
	Path string `yaml:"path"`
	// Body is sent as JSON, with {{variables}} replaced in its strings; Raw is sent as it is
	// (after the same replacement), with ContentType (default application/json).
	Body        any    `yaml:"body"`
	Raw         string `yaml:"raw"`
	ContentType string `yaml:"content_type"`
	// Auth is admin (default), anonymous or wrong (admin with a wrong password).
	Auth string `yaml:"auth"`
	// Capture maps a variable to a path in the answer (dotted, array elements numbered);
	// "task." paths look in the task the step started.
	Capture map[string]string `yaml:"capture"`
	// Check lists paths ("*" for every element) whose values must be equal on both servers
	// once masked; error bodies and task essentials are compared exactly anyway.
	Check []string `yaml:"check"`
}

var varRE = regexp.MustCompile(`\{\{([a-zA-Z0-9_]+)\}\}`)

// expand replaces {{name}} by the variable's value; it reports the names it did not know.
func expand(s string, vars map[string]string, missing *[]string) string {
	return varRE.ReplaceAllStringFunc(s, func(m string) string {
		name := varRE.FindStringSubmatch(m)[1]
		v, ok := vars[name]
		if !ok {
			*missing = append(*missing, name)
		}
		return v
	})
}

// expandValue replaces variables in every string of a YAML-decoded body, converting maps to
// JSON objects on the way.
func expandValue(v any, vars map[string]string, missing *[]string) any {
	switch x := v.(type) {
	case string:
		return expand(x, vars, missing)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = expandValue(e, vars, missing)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = expandValue(e, vars, missing)
		}
		return out
	}
	return v
}

// side is what one server answered to a step.
type side struct {
	err    error
	answer answer
	task   map[string]any // the task a 202 started, when followed
	took   time.Duration  // the request and the wait for its task
}

// run sends st to s with that server's variables.
func run(s *server, st step, vars map[string]string) (sd side) {
	began := time.Now()
	defer func() { sd.took = time.Since(began) }()
	var missing []string
	p := expand(st.Path, vars, &missing)
	var body []byte
	if st.Raw != "" {
		body = []byte(expand(st.Raw, vars, &missing))
	} else if st.Body != nil {
		b, err := json.Marshal(expandValue(st.Body, vars, &missing))
		if err != nil {
			return side{err: err}
		}
		body = b
	}
	if len(missing) > 0 {
		return side{err: fmt.Errorf("no value for %s (an earlier capture failed)", strings.Join(missing, ", "))}
	}
	a, err := s.send(st.Method, p, st.Auth, st.ContentType, body)
	if err != nil {
		return side{err: err}
	}
	out := side{answer: a}
	if obj, ok := a.json.(map[string]any); ok && a.status == http.StatusAccepted {
		if href, ok := obj["task"].(string); ok {
			task, err := s.waitTask(href)
			if err != nil {
				out.err = err
				return out
			}
			out.task = task
		}
	}
	return out
}

// capture sets the step's variables from one side's answer; it returns the names it could not
// find.
func capture(st step, sd side, vars map[string]string) []string {
	var failed []string
	names := make([]string, 0, len(st.Capture))
	for n := range st.Capture {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		p := st.Capture[name]
		var root any = sd.answer.json
		if rest, ok := strings.CutPrefix(p, "task."); ok {
			root, p = any(sd.task), rest
		}
		vals := lookup(root, p)
		if len(vals) != 1 {
			failed = append(failed, name)
			continue
		}
		switch v := vals[0].(type) {
		case string:
			vars[name] = v
		default:
			vars[name] = strings.Trim(show(v), `"`)
		}
	}
	return failed
}

// compareStep lists the differences between the two sides of one step.
func compareStep(id string, st step, p, o side) []difference {
	c := &comparer{step: id}
	if p.err != nil || o.err != nil {
		errText := func(err error) string {
			if err == nil {
				return "no error"
			}
			return err.Error()
		}
		if p.err == nil || o.err == nil || p.err.Error() != o.err.Error() {
			c.add("error", errText(p.err), errText(o.err))
		}
		if p.answer.status == 0 || o.answer.status == 0 {
			return c.diffs
		}
	}
	pa, oa := p.answer, o.answer
	if pa.status != oa.status {
		c.add("status", fmt.Sprintf("%d %s", pa.status, clip(pa.body)), fmt.Sprintf("%d %s", oa.status, clip(oa.body)))
		return c.diffs
	}
	switch {
	case pa.isJSON != oa.isJSON:
		c.add("body", fmt.Sprintf("json=%v %s", pa.isJSON, clip(pa.body)), fmt.Sprintf("json=%v %s", oa.isJSON, clip(oa.body)))
	case pa.isJSON:
		c.shape("body", pa.json, oa.json, pa.status >= 400)
		for _, chk := range st.Check {
			pv, ov := maskValue(lookup(pa.json, chk)), maskValue(lookup(oa.json, chk))
			if show(pv) != show(ov) {
				c.add("check "+chk, show(pv), show(ov))
			}
		}
	}
	if p.task != nil || o.task != nil {
		if p.task == nil || o.task == nil {
			c.add("task", show(p.task != nil), show(o.task != nil))
			return c.diffs
		}
		compareTask(c, p.task, o.task)
	}
	return c.diffs
}

// compareTask compares two finished tasks: their key sets and types, state and name exactly,
// created_resources once masked, result's shape and the error's description.
func compareTask(c *comparer, p, o map[string]any) {
	for k := range p {
		if _, ok := o[k]; !ok {
			c.add("task."+k, "present", "absent")
		}
	}
	for k := range o {
		if _, ok := p[k]; !ok {
			c.add("task."+k, "absent", "present")
		}
	}
	for _, k := range []string{"state", "name"} {
		if show(p[k]) != show(o[k]) {
			c.add("task."+k, show(p[k]), show(o[k]))
		}
	}
	c.shape("task.created_resources", maskValue(p["created_resources"]), maskValue(o["created_resources"]), true)
	c.shape("task.result", p["result"], o["result"], false)
	pe, _ := p["error"].(map[string]any)
	oe, _ := o["error"].(map[string]any)
	if typeName(p["error"]) != typeName(o["error"]) {
		c.add("task.error", show(p["error"]), show(o["error"]))
	} else if pe != nil && mask(fmt.Sprint(pe["description"])) != mask(fmt.Sprint(oe["description"])) {
		c.add("task.error.description", show(pe["description"]), show(oe["description"]))
	}
}

func loadConversations(t *testing.T) []conversation {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("conversations", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no conversations/*.yaml (%v)", err)
	}
	sort.Strings(files)
	var convs []conversation
	seen := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c conversation
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if c.Name == "" {
			t.Fatalf("%s: no conversation name", f)
		}
		for i, st := range c.Steps {
			id := c.Name + "/" + st.Name
			if st.Name == "" || seen[id] {
				t.Fatalf("%s: step %d: missing or repeated name %q", f, i+1, st.Name)
			}
			seen[id] = true
			if st.Method == "" || st.Path == "" {
				t.Fatalf("%s: step %s: method and path are required", f, id)
			}
		}
		convs = append(convs, c)
	}
	return convs
}

// knownSection is the heading of docs/api.md's table of deliberate differences.
const knownSection = "## Differences the differential test allows"

// loadKnown reads the table under knownSection in docs/api.md: rows of
// | `step pattern` | `where pattern` | reason |.
func loadKnown(t *testing.T) []*known {
	t.Helper()
	file := filepath.Join("..", "..", "docs", "api.md")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n"+knownSection+"\n")
	if !ok {
		t.Fatalf("%s has no section %q", file, knownSection)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	var list []*known
	for _, line := range strings.Split(section, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 3 {
			t.Fatalf("%s, %s: want 3 cells: %s", file, knownSection, line)
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if cells[0] == "step" || strings.HasPrefix(cells[0], "---") {
			continue // the header and its rule
		}
		k := &known{Step: strings.Trim(cells[0], "`"), Where: strings.Trim(cells[1], "`"), Reason: cells[2]}
		if k.Step == "" || k.Where == "" || k.Reason == "" {
			t.Fatalf("%s, %s: step, where and reason are required: %s", file, knownSection, line)
		}
		list = append(list, k)
	}
	return list
}

// TestParity runs every conversation against the real Pulp and pulpgo and compares them.
func TestParity(t *testing.T) {
	if os.Getenv(skipEnv) == "0" {
		t.Skipf("%s=0", skipEnv)
	}
	convs := loadConversations(t)
	knownList := loadKnown(t)

	began := time.Now()
	pulp := newServer("pulp", startPulp(t))
	ours := newServer("pulpgo", startPulpgo(t))
	t.Logf("servers ready in %s", time.Since(began).Round(100*time.Millisecond))

	began = time.Now()
	var steps, agree, documented int
	var pulpTook, oursTook time.Duration
	var undocumented []difference
	// Variables carry over from one conversation to the next (files run in name order).
	pvars := map[string]string{"missing": "00000000-0000-0000-0000-000000000000"}
	ovars := map[string]string{"missing": "00000000-0000-0000-0000-000000000000"}
	for _, conv := range convs {
		for _, st := range conv.Steps {
			id := conv.Name + "/" + st.Name
			p := run(pulp, st, pvars)
			o := run(ours, st, ovars)
			pulpTook += p.took
			oursTook += o.took
			diffs := compareStep(id, st, p, o)
			pf, of := capture(st, p, pvars), capture(st, o, ovars)
			if fmt.Sprint(pf) != fmt.Sprint(of) {
				diffs = append(diffs, difference{step: id, where: "capture",
					pulp: "missing " + fmt.Sprint(pf), ours: "missing " + fmt.Sprint(of)})
			}
			steps++
			if len(diffs) == 0 {
				agree++
				t.Logf("%-55s %s %s: agree (%d; Pulp %s, pulpgo %s)", id, st.Method, st.Path, p.answer.status,
					p.took.Round(time.Millisecond), o.took.Round(time.Millisecond))
				continue
			}
			allKnown := true
			for _, d := range diffs {
				matched := false
				for _, k := range knownList {
					if k.matches(d) {
						k.used, matched = true, true
					}
				}
				if !matched {
					allKnown = false
					undocumented = append(undocumented, d)
					t.Logf("%-55s DIFFERS %s", id, d)
				} else {
					t.Logf("%-55s documented: %s", id, d)
				}
			}
			if allKnown {
				documented++
			}
		}
	}
	t.Logf("conversations took %s (answers and tasks: Pulp %s, pulpgo %s)", time.Since(began).Round(100*time.Millisecond),
		pulpTook.Round(100*time.Millisecond), oursTook.Round(100*time.Millisecond))
	for _, d := range undocumented {
		t.Errorf("undocumented difference: %s", d)
	}
	for _, k := range knownList {
		if !k.used {
			t.Errorf("docs/api.md lists a difference that no longer occurs (remove it from %q): step %q where %q (%s)",
				knownSection, k.Step, k.Where, k.Reason)
		}
	}
	summary := fmt.Sprintf("parity: %d steps compared, %d agree, %d differ only as documented in docs/api.md (%d entries), %d undocumented differences",
		steps, agree, documented, len(knownList), len(undocumented))
	t.Log(summary)
	fmt.Println(summary)
}
