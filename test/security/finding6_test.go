package security

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// Sizes of TestFinding6HugeManifests.
const (
	hugeManifests  = 40
	hugeAnnotation = 3900 << 10 // the manifest stays under the 4 MiB limit
	// rssBound is the most the server may hold after the pulls; the review measured 742 MB
	// before the fix (51 MB idle).
	rssBound = 400 << 20
)

// TestFinding6HugeManifests covers finding 6 of issue 6: 40 anonymous pulls of distinct
// ~3.9 MiB manifests (one huge annotation each) through a public pull-through distribution
// must not leave the server holding hundreds of megabytes: a few seconds later its RSS is
// below 400 MB. A manifest over 4 MiB is refused (an error to the client) and not stored.
func TestFinding6HugeManifests(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		up := startHostile(t)
		filler := bytes.Repeat([]byte("0123456789abcdef"), hugeAnnotation/16)
		var names []string
		digests := map[string]string{}
		for i := range hugeManifests {
			name := fmt.Sprintf("huge/m%02d", i)
			// Distinct bytes per manifest: a prefix of its own.
			ann := map[string]string{"org.example.junk": strconv.Itoa(i) + "-" + string(filler)}
			img := up.addImage(name, "1", ann, randomBytes(t, 512))
			if len(img.Manifest) >= 4<<20 {
				t.Fatalf("manifest %s is %d bytes, want under 4 MiB", name, len(img.Manifest))
			}
			names = append(names, name)
			digests[name] = img.Digest
		}
		over := up.addImage("huge/over", "1", map[string]string{"org.example.junk": string(filler) + string(filler[:300<<10])}, randomBytes(t, 512))
		if len(over.Manifest) <= 4<<20 {
			t.Fatalf("the oversized manifest is %d bytes, want over 4 MiB", len(over.Manifest))
		}

		e := startServer(t, eng)
		e.createCache(t, "big", up.url, nil, nil)
		pid := serverPid(t, e)
		t.Logf("server RSS before the pulls: %d MiB", rss(t, pid)>>20)

		// 8 clients at a time, as a crowd would.
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		errs := make([]error, len(names))
		for i, name := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				_, _, d, err := e.reg.Manifest(client.Context(t), "big/"+name, "1")
				if err == nil && d != digests[name] {
					err = fmt.Errorf("got %s, want %s", d, digests[name])
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("pulls of the huge manifests: %v", err)
		}
		peak := rss(t, pid)
		time.Sleep(5 * time.Second)
		after := rss(t, pid)
		t.Logf("server RSS right after the pulls: %d MiB; 5 s later: %d MiB (bound %d MiB)", peak>>20, after>>20, rssBound>>20)
		if after > rssBound {
			t.Errorf("server RSS %d MiB 5 s after %d pulls of ~3.9 MiB manifests, want under %d MiB", after>>20, hugeManifests, rssBound>>20)
		}

		// Over the limit: an error to the client, nothing stored.
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			a := e.reg.do(t, method, "/v2/big/huge/over/manifests/1")
			if a.Status == http.StatusOK {
				t.Errorf("%s of a %d-byte manifest: 200, want an error", method, len(over.Manifest))
			}
		}
		a := e.reg.do(t, http.MethodGet, "/v2/big/huge/over/manifests/"+over.Digest)
		if a.Status == http.StatusOK {
			t.Errorf("GET of a %d-byte manifest by digest: 200, want an error", len(over.Manifest))
		}
		if _, err := os.Stat(blobFile(t, e, over.Digest)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the oversized manifest was stored at %s (stat: %v)", blobFile(t, e, over.Digest), err)
		}
	})
}

// serverPid finds the process of e's server: the one whose command line has its data
// directory (harness.Server does not say its pid).
func serverPid(t testing.TB, e *env) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(raw), "\x00")
		if len(args) > 1 && args[1] == "serve" && strings.Contains(string(raw), "\x00--data-dir\x00"+e.srv.DataDir+"\x00") {
			return pid
		}
	}
	t.Fatalf("no process serves the data directory %s", e.srv.DataDir)
	return 0
}

// rss returns the resident set size of process pid in bytes (VmRSS).
func rss(t testing.TB, pid int) int64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read the server's status: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
