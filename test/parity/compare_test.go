package parity

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// difference is one way two answers to a step differ.
type difference struct {
	// step is "conversation/step".
	step string
	// where says what differs: "status", "body.KEY.KEY...", "task.state", "capture.NAME"...
	// Array elements are numbered (body.results.0.name).
	where string
	// pulp and ours describe each side's value.
	pulp, ours string
}

func (d difference) String() string {
	return fmt.Sprintf("%s: %s: pulp %s, pulpgo %s", d.step, d.where, d.pulp, d.ours)
}

var (
	uuidRE = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	timeRE = regexp.MustCompile(`\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?`)
	// originRE matches the servers' own origins (their ports differ).
	originRE    = regexp.MustCompile(`https?://(127\.0\.0\.1|localhost)(:\d+)?`)
	jsonParseRE = regexp.MustCompile(`JSON parse error - .*`)
)

// mask replaces what legitimately differs between the two servers in a string: ids,
// timestamps, the servers' origins, and the parser's wording of a JSON parse error.
func mask(s string) string {
	s = uuidRE.ReplaceAllString(s, "<id>")
	s = timeRE.ReplaceAllString(s, "<time>")
	s = originRE.ReplaceAllString(s, "<origin>")
	s = jsonParseRE.ReplaceAllString(s, "JSON parse error - <parser's message>")
	return s
}

// maskValue masks every string inside a decoded JSON value.
func maskValue(v any) any {
	switch x := v.(type) {
	case string:
		return mask(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = maskValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = maskValue(e)
		}
		return out
	}
	return v
}

// typeName is the JSON type of a decoded value.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// show renders a value briefly for a report.
func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	const n = 300
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// comparer collects the differences of one step.
type comparer struct {
	step  string
	diffs []difference
}

func (c *comparer) add(where, pulp, ours string) {
	c.diffs = append(c.diffs, difference{step: c.step, where: where, pulp: pulp, ours: ours})
}

// shape compares two decoded values: key sets at every depth, types and array lengths, and,
// when exact is set, scalar values once masked.
func (c *comparer) shape(where string, p, o any, exact bool) {
	tp, to := typeName(p), typeName(o)
	if tp != to {
		c.add(where, tp+" "+show(maskValue(p)), to+" "+show(maskValue(o)))
		return
	}
	switch pv := p.(type) {
	case map[string]any:
		ov := o.(map[string]any)
		keys := map[string]bool{}
		for k := range pv {
			keys[k] = true
		}
		for k := range ov {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			pe, inP := pv[k]
			oe, inO := ov[k]
			switch {
			case !inP:
				c.add(where+"."+k, "absent", "present "+show(maskValue(oe)))
			case !inO:
				c.add(where+"."+k, "present "+show(maskValue(pe)), "absent")
			default:
				c.shape(where+"."+k, pe, oe, exact)
			}
		}
	case []any:
		ov := o.([]any)
		if len(pv) != len(ov) {
			c.add(where+".length", strconv.Itoa(len(pv))+" "+show(maskValue(pv)),
				strconv.Itoa(len(ov))+" "+show(maskValue(ov)))
		}
		for i := 0; i < len(pv) && i < len(ov); i++ {
			c.shape(where+"."+strconv.Itoa(i), pv[i], ov[i], exact)
		}
	default:
		if exact {
			mp, mo := maskValue(p), maskValue(o)
			if show(mp) != show(mo) {
				c.add(where, show(mp), show(mo))
			}
		}
	}
}

// lookup finds the values at a dotted path in a decoded value; "*" stands for every element
// of an array or every value of an object. It returns nil when nothing is there.
func lookup(v any, p string) []any {
	if p == "" || p == "." {
		return []any{v}
	}
	head, rest, _ := strings.Cut(p, ".")
	var next []any
	switch x := v.(type) {
	case map[string]any:
		if head == "*" {
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				next = append(next, x[k])
			}
		} else if e, ok := x[head]; ok {
			next = append(next, e)
		}
	case []any:
		if head == "*" {
			next = append(next, x...)
		} else if i, err := strconv.Atoi(head); err == nil && i >= 0 && i < len(x) {
			next = append(next, x[i])
		}
	}
	var out []any
	for _, e := range next {
		if rest == "" {
			out = append(out, e)
		} else {
			out = append(out, lookup(e, rest)...)
		}
	}
	return out
}

// known is one deliberate difference listed in docs/api.md.
type known struct {
	// Step and Where are patterns (path.Match) for a difference's step and where.
	Step  string `json:"step"`
	Where string `json:"where"`
	// Reason says why the difference is deliberate (or, for a difference another issue will
	// remove, which one).
	Reason string `json:"reason"`
	used   bool
}

// matches says whether k documents d.
func (k *known) matches(d difference) bool {
	okStep, err1 := path.Match(k.Step, d.step)
	okWhere, err2 := path.Match(k.Where, d.where)
	return err1 == nil && err2 == nil && okStep && okWhere
}
