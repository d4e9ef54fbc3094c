package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
)

// requestDeadline is every request's client deadline during a fault: a request that has no
// answer by then hung, which fails the case.
const requestDeadline = 30 * time.Second

// recoveryBound is the bound: within it after the recovery, a pull, a sync and a push
// succeed.
const recoveryBound = 10 * time.Second

// seen counts what requests got during a fault.
type seen struct {
	mu       sync.Mutex
	codes    map[string]int // "api 200", "registry 503", "registry conn", ...
	maxLat   time.Duration
	hangs    int
	problems []string // hangs, 500s, 503s without the protocol's body, 3xx and 4xx
}

func newSeen() *seen { return &seen{codes: map[string]int{}} }

// record notes one answer (code 0: no answer, err says why) of kind api or registry.
func (s *seen) record(kind string, code int, body []byte, err error, took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxLat = max(s.maxLat, took)
	key := fmt.Sprintf("%s %d", kind, code)
	switch {
	case err != nil && (errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err)):
		s.hangs++
		key = kind + " hang"
		s.problems = append(s.problems, fmt.Sprintf("%s request hung %s: %v", kind, took.Round(time.Millisecond), err))
	case err != nil:
		key = kind + " conn"
	case code >= 500 && code != http.StatusServiceUnavailable:
		s.problems = append(s.problems, fmt.Sprintf("%s %d: %.200s", kind, code, body))
	case code >= 300 && code < 500:
		// The objects the load asks for exist: a 404 during an outage tells the client a lie.
		s.problems = append(s.problems, fmt.Sprintf("%s %d during the fault: %.200s", kind, code, body))
	case code == http.StatusServiceUnavailable:
		if why := protocolBody(kind, body); why != "" {
			s.problems = append(s.problems, fmt.Sprintf("%s 503 %s: %.200s", kind, why, body))
		}
	}
	s.codes[key]++
}

// protocolBody says what is wrong with a 503's body of kind, "" when it is the protocol's:
// DRF's {"detail": ...} for the API, {"errors":[{"code":"UNAVAILABLE",...}]} for the registry.
func protocolBody(kind string, body []byte) string {
	if kind == "api" {
		var drf struct {
			Detail string `json:"detail"`
		}
		if json.Unmarshal(body, &drf) != nil || drf.Detail == "" {
			return "without DRF's detail"
		}
		return ""
	}
	var reg client.ErrorBody
	if json.Unmarshal(body, &reg) != nil || len(reg.Errors) == 0 || reg.Errors[0].Code != "UNAVAILABLE" {
		return "without the registry's UNAVAILABLE error"
	}
	return ""
}

// partial notes a 200 whose body was cut or is not the object asked for: something partial
// was visible.
func (s *seen) partial(path string, n int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes["registry partial"]++
	s.problems = append(s.problems, fmt.Sprintf("partial answer: 200 for %s with %d bytes that are not the object (read error %v)", path, n, err))
}

// summary is the counts, sorted, and the longest request.
func (s *seen) summary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k := range s.codes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, s.codes[k]))
	}
	return fmt.Sprintf("%s; max latency %s; hangs %d", strings.Join(parts, " "), s.maxLat.Round(time.Millisecond), s.hangs)
}

// check fails t for each problem seen.
func (s *seen) check(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range s.problems {
		if i == 10 {
			t.Errorf("... and %d more", len(s.problems)-10)
			break
		}
		t.Error(p)
	}
}

// load sends requests until stop is called (which waits for the requests in flight, counted
// too): API reads (a list of repositories), registry
// manifest and blob GETs of a cached image through each content process, each with a
// deadline, counted in a seen.
type load struct {
	seen *seen
	stop func()
	wg   sync.WaitGroup
}

// startLoad starts the load on the api and the content processes given.
func (tp *topology) startLoad(t *testing.T, api bool, contents ...*harness.Role) *load {
	l := &load{seen: newSeen()}
	ctx, cancel := context.WithCancel(context.Background())
	l.stop = func() { cancel(); l.wg.Wait() }
	t.Cleanup(l.stop)
	loop := func(f func()) {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				f()
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	if api {
		loop(func() {
			code, body, err, took := tp.apiDo("GET", "/pulp/api/v3/repositories/container/container/?limit=5", nil)
			l.seen.record("api", code, body, err, took)
		})
	}
	for _, c := range contents {
		reg := &client.Registry{Base: c.URL(), HTTP: tp.http, Accept: tp.cached.MediaType}
		loop(func() {
			// Each 200 must carry the whole object: its bytes have the digest asked for.
			for path, digest := range map[string]string{
				"/v2/hub/" + tp.cached.Name + "/manifests/latest":                    tp.cached.ManifestDigest,
				"/v2/hub/" + tp.cached.Name + "/blobs/" + tp.cached.Layers[0].Digest: tp.cached.Layers[0].Digest,
			} {
				rctx, cancel := context.WithTimeout(context.Background(), requestDeadline)
				start := time.Now()
				hdr := http.Header{"Accept": {reg.ManifestAccept()}}
				resp, err := reg.Request(rctx, "GET", path, hdr)
				var body []byte
				code := 0
				if err == nil {
					var rerr error
					body, rerr = io.ReadAll(resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
					if code == http.StatusOK && (rerr != nil || digestOf(body) != digest) {
						l.seen.partial(path, len(body), rerr)
					}
				}
				cancel()
				l.seen.record("registry", code, body, err, time.Since(start))
			}
		})
	}
	return l
}

// matrix logs the case's line and appends it to $PULPGO_FAULTS_MATRIX when set.
func matrix(t *testing.T, name, expected, seen string) {
	t.Helper()
	line := fmt.Sprintf("MATRIX | %s | %s | %s", name, expected, seen)
	t.Log(line)
	if path := os.Getenv("PULPGO_FAULTS_MATRIX"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Errorf("matrix file: %v", err)
			return
		}
		defer f.Close()
		fmt.Fprintln(f, line)
	}
}
