package security

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/testenv"
)

// TestFinding7JunkNames covers finding 7 of issue 6: 20 concurrent anonymous pulls by digest
// of one real manifest through 20 junk names the upstream does not have, at the moment the
// real name's pull of the same digest is in flight (the upstream delays manifests by a
// second), must each answer 404 and create no repository, remote or distribution; the real
// name is served.
func TestFinding7JunkNames(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		up := startHostile(t)
		img := up.addImage("real/img", "1", nil, randomBytes(t, 1024))
		up.manifestDelay.Store(int64(time.Second))
		e := startServer(t, eng)
		e.createCache(t, "j", up.url, nil, nil)

		const junk = 20
		var junkNames []string
		for i := range junk {
			junkNames = append(junkNames, fmt.Sprintf("j/junk%02d/img", i))
		}
		names := append([]string{"j/real/img"}, junkNames...)
		statuses := make([]int, len(names))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, name := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if i > 0 {
					time.Sleep(100 * time.Millisecond) // the real name's fetch is in flight
				}
				statuses[i] = e.reg.do(t, http.MethodGet, "/v2/"+name+"/manifests/"+img.Digest).Status
			}()
		}
		close(start)
		wg.Wait()
		if statuses[0] != http.StatusOK {
			t.Errorf("GET j/real/img@%s: %d, want 200", img.Digest, statuses[0])
		}
		served := 0
		for i, s := range statuses[1:] {
			if s != http.StatusNotFound {
				served++
				t.Errorf("GET %s@%s: %d, want 404 (the upstream has no such name)", junkNames[i], img.Digest, s)
			}
		}
		if got := e.api.childObjects(t, junkNames...); len(got) > 0 {
			t.Errorf("%d of %d junk names were answered, and the cache created objects for junk names: %v", served, junk, got)
		}
		if got := e.api.childObjects(t, "j/real/img"); len(got) != 3 {
			t.Errorf("objects of j/real/img: %v, want its repository, remote and distribution", got)
		}
	})
}

// TestFinding7NewNamesLimit covers the creation limit of finding 7: with
// --new-names-per-minute 3, pulls of 5 distinct existing names create 3 images; the 4th and
// 5th get 429 TOOMANYREQUESTS, by tag and by digest, and nothing is created for them. Names
// already created are still served.
func TestFinding7NewNamesLimit(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		up := startHostile(t)
		var imgs []hostileImage
		for i := range 5 {
			imgs = append(imgs, up.addImage(fmt.Sprintf("lib/n%d", i+1), "1", nil, randomBytes(t, 512)))
		}
		e := startServer(t, eng, "--new-names-per-minute", "3")
		e.createCache(t, "lim", up.url, nil, nil)

		for i, img := range imgs {
			name := "lim/" + img.Name
			if i < 3 {
				e.reg.mustPull(t, name, "1", img.Digest)
				continue
			}
			// The 4th by tag, then by digest; the 5th by digest, then by tag. The refused tag pull
			// has fetched and stored the manifest for the name: the digest pull after it still
			// needs the name's objects, so it is refused too.
			refs := []string{"1", img.Digest}
			if i == 4 {
				refs = []string{img.Digest, "1"}
			}
			for _, ref := range refs {
				expectStatus(t, e.reg, http.MethodGet, "/v2/"+name+"/manifests/"+ref, http.StatusTooManyRequests, "TOOMANYREQUESTS")
			}
			if got := e.api.childObjects(t, name); len(got) > 0 {
				t.Errorf("the pull of %s past the limit created %v", name, got)
			}
		}
		for _, img := range imgs[:3] {
			if got := e.api.childObjects(t, "lim/"+img.Name); len(got) != 3 {
				t.Errorf("objects of lim/%s: %v, want its repository, remote and distribution", img.Name, got)
			}
			e.reg.mustPull(t, "lim/"+img.Name, img.Digest, img.Digest)
		}
	})
}
