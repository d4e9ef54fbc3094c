package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/content/oci"
)

// rangeGrammar is the single byte range of RFC 9110 section 14.1.2 that parseRange serves:
// first-last, first- or -suffix, with optional white space around it.
var rangeGrammar = regexp.MustCompile(`^bytes=(?:(\d+)-(\d*)|-(\d+))$`)

// FuzzParseRange checks parseRange on any header and blob size. Property: it never panics; a
// range it accepts is of the RFC's single byte-range grammar, and a satisfiable one lies
// within the blob (0 <= start <= end < size), starts where the header says (first, or size
// minus the suffix) and ends at the header's last byte clamped to the blob; formatting an
// accepted range as bytes=start-end and parsing it again gives the same range (round trip);
// and every header of the grammar whose numbers fit is accepted (first <= last).
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=90-", "bytes=-10", "bytes=-0", "bytes=9-0", "bytes=0-1,3-4",
		"bytes=+1-2", "items=0-1", "bytes= 5-6 ", "bytes=99999999999999999999-", "bytes=-9223372036854775807", "bytes=0x1-2"} {
		f.Add(s, int64(100))
	}
	f.Add("bytes=0-", int64(0))
	f.Add("bytes=5-", int64(1)<<62)
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			return // a blob's size is never negative
		}
		start, end, ok, satisfiable := parseRange(h, size)
		spec, _ := strings.CutPrefix(h, "bytes=")
		m := rangeGrammar.FindStringSubmatch("bytes=" + strings.TrimSpace(spec))
		if ok && (m == nil || !strings.HasPrefix(h, "bytes=")) {
			t.Fatalf("parseRange(%q) accepted a header outside the grammar", h)
		}
		if m != nil && strings.HasPrefix(h, "bytes=") {
			first, ferr := strconv.ParseInt(m[1], 10, 64)
			last, lerr := strconv.ParseInt(m[2], 10, 64)
			suffix, serr := strconv.ParseInt(m[3], 10, 64)
			fits := m[3] != "" && serr == nil || m[1] != "" && ferr == nil && (m[2] == "" || lerr == nil && last >= first)
			if fits && !ok {
				t.Fatalf("parseRange(%q, %d) refused a range of the grammar", h, size)
			}
			if ok && satisfiable {
				wantStart, wantEnd := first, size-1
				if m[2] != "" {
					wantEnd = min(last, size-1)
				}
				if m[3] != "" {
					wantStart = size - min(suffix, size)
				}
				if start != wantStart || end != wantEnd {
					t.Fatalf("parseRange(%q, %d) = %d-%d, want %d-%d", h, size, start, end, wantStart, wantEnd)
				}
			}
		}
		if !ok || !satisfiable {
			return
		}
		if start < 0 || start > end || end >= size {
			t.Fatalf("parseRange(%q, %d) = %d-%d, outside the blob", h, size, start, end)
		}
		s2, e2, ok2, sat2 := parseRange(fmt.Sprintf("bytes=%d-%d", start, end), size)
		if s2 != start || e2 != end || !ok2 || !sat2 {
			t.Fatalf("round trip of %d-%d: %d-%d %v %v", start, end, s2, e2, ok2, sat2)
		}
	})
}

// FuzzPushedManifest checks readPushedManifest, the gate of every manifest push, on any body
// and Content-Type. Property: it never panics; what it refuses is refused with the
// distribution spec's MANIFEST_INVALID (or a size error), never an internal error; and what
// it accepts is what the spec allows: schemaVersion 2, a media type that may be pushed and
// that the Content-Type (when it names a manifest type) and the JSON's mediaType (when set)
// agree with, a config for an image manifest, and a digest that is the sha256 of the bytes.
func FuzzPushedManifest(f *testing.F) {
	const cfg = `"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}`
	for _, s := range []string{
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` + cfg + `,"layers":[]}`,
		`{"schemaVersion":2,` + cfg + `,"layers":[]}`,
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`,
		// Found by this target: a schema 1 body sent as an OCI index was stored as one.
		`{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}`,
		`{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`,
		`{"schemaVersion":3,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`,
	} {
		f.Add([]byte(s), oci.MediaTypeOCIManifest)
		f.Add([]byte(s), oci.MediaTypeOCIIndex)
		f.Add([]byte(s), "")
	}
	f.Fuzz(func(t *testing.T, raw []byte, ct string) {
		req := httptest.NewRequest("PUT", "/v2/a/manifests/t", bytes.NewReader(raw))
		req.Header.Set("Content-Type", ct)
		m, err := readPushedManifest(req)
		if err != nil {
			if !errors.Is(err, oci.ErrManifestInvalid) && !errors.Is(err, oci.ErrManifestTooLarge) {
				t.Fatalf("refused with %v, not MANIFEST_INVALID", err)
			}
			return
		}
		var doc struct {
			SchemaVersion *int64 `json:"schemaVersion"`
			MediaType     string `json:"mediaType"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("accepted a body that is not JSON: %v", err)
		}
		if doc.SchemaVersion == nil || *doc.SchemaVersion != 2 {
			t.Fatalf("accepted a manifest without schemaVersion 2: %.200q", raw)
		}
		if doc.MediaType != "" && doc.MediaType != m.MediaType {
			t.Fatalf("accepted media type %q, the JSON says %q", m.MediaType, doc.MediaType)
		}
		pushable := false
		for _, p := range pushableTypes {
			pushable = pushable || p == m.MediaType
		}
		if !pushable {
			t.Fatalf("accepted media type %q", m.MediaType)
		}
		if oci.IsManifestMediaType(ct) && ct != m.MediaType {
			t.Fatalf("accepted a %s body sent as %s", m.MediaType, ct)
		}
		if !oci.IsIndex(m.MediaType) && m.Config == nil {
			t.Fatal("accepted an image manifest without a config")
		}
		if m.Digest != oci.Digest(raw) {
			t.Fatalf("digest %s is not the sha256 of the bytes", m.Digest)
		}
	})
}
