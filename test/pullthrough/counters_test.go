package pullthrough

import (
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// concurrentPulls is how many clients pull at the same moment.
const concurrentPulls = 20

// TestUpstreamRequests counts what reaches "Docker Hub": concurrent cold pulls fetch each blob
// once; pulls by digest and tag pulls within the freshness window cost nothing; after the
// window a tag pull costs one manifest HEAD (and no GET), shared by concurrent clients.
func TestUpstreamRequests(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		hub := client.StartHub(t)
		img, err := hub.PushLarge(ctx, "library/big", "1", 3, 3)
		if err != nil {
			t.Fatal(err)
		}
		const name = "docker-cache/library/big"

		t.Run("cold-then-cached", func(t *testing.T) {
			e := startServer(t, eng, "", "--tag-freshness", "10m")
			e.createCache(t, cacheBase, cacheBase, hub.URL(), nil, nil)
			hub.Reset()
			start := time.Now()
			if err := e.reg.pullN(ctx, concurrentPulls, name, "1"); err != nil {
				t.Fatalf("%d concurrent cold pulls: %v", concurrentPulls, err)
			}
			c := hub.Counts()
			t.Logf("%d cold pulls took %s; upstream: %+v", concurrentPulls, time.Since(start).Round(time.Millisecond), c)
			for _, b := range img.Blobs() {
				if cdn, front := hub.CDNGets(b.Digest), hub.BlobGets(b.Digest); cdn != 1 || front != 1 {
					t.Errorf("blob %s (%d bytes): %d blob GETs at the front and %d at the CDN, want 1 and 1", b.Digest, b.Size, front, cdn)
				}
			}
			if c.CDNAuthorization != 0 {
				t.Errorf("%d CDN requests carried an Authorization header", c.CDNAuthorization)
			}
			// A tag pull right away (while the name's first resolution may still be
			// reused), then again after the recording task made the repository's version.
			before := hub.Counts()
			e.reg.mustPull(t, name, "1", img)
			if after := hub.Counts(); after != before {
				t.Errorf("a tag pull right after the cold pulls (within the freshness window) reached the upstream:\nbefore %+v\nafter  %+v", before, after)
			}
			start = time.Now()
			e.api.waitRecorded(t, name, 1)
			t.Logf("recorded %s later", time.Since(start).Round(time.Millisecond))

			before = hub.Counts()
			e.reg.mustPull(t, name, img.ManifestDigest, img)
			if after := hub.Counts(); after != before {
				t.Errorf("a pull by digest reached the upstream:\nbefore %+v\nafter  %+v", before, after)
			}
			e.reg.mustPull(t, name, "1", img)
			if after := hub.Counts(); after != before {
				t.Errorf("a tag pull within the freshness window, after recording, reached the upstream:\nbefore %+v\nafter  %+v", before, after)
			}
		})

		t.Run("freshness-0", func(t *testing.T) {
			e := startServer(t, freshEngine(t, eng), "", "--tag-freshness", "0")
			e.createCache(t, cacheBase, cacheBase, hub.URL(), nil, nil)
			e.reg.mustPull(t, name, "1", img)
			for i := range 3 {
				before := hub.Counts()
				e.reg.mustPull(t, name, "1", img)
				after := hub.Counts()
				if heads, gets := after.ManifestHeads-before.ManifestHeads, after.ManifestGets-before.ManifestGets; heads != 1 || gets != 0 {
					t.Errorf("tag pull %d with --tag-freshness 0: %d manifest HEADs and %d manifest GETs upstream, want 1 and 0", i+1, heads, gets)
				}
				if blobs := after.BlobGets + after.BlobHeads + after.CDNGets - before.BlobGets - before.BlobHeads - before.CDNGets; blobs != 0 {
					t.Errorf("tag pull %d with --tag-freshness 0: %d blob requests upstream, want 0", i+1, blobs)
				}
			}
		})

		t.Run("after-window", func(t *testing.T) {
			// Long enough that the concurrent pulls below fit in one window even on a loaded
			// machine (with 1 s, a make test run once saw them straddle two: 2 HEADs).
			const window = 3 * time.Second
			e := startServer(t, freshEngine(t, eng), "", "--tag-freshness", window.String())
			e.createCache(t, cacheBase, cacheBase, hub.URL(), nil, nil)
			e.reg.mustPull(t, name, "1", img)
			waitPast(time.Now().Add(window + 100*time.Millisecond))
			before := hub.Counts()
			if err := e.reg.pullN(ctx, concurrentPulls, name, "1"); err != nil {
				t.Fatalf("%d concurrent tag pulls: %v", concurrentPulls, err)
			}
			after := hub.Counts()
			if heads, gets := after.ManifestHeads-before.ManifestHeads, after.ManifestGets-before.ManifestGets; heads != 1 || gets != 0 {
				t.Errorf("%d concurrent tag pulls after the window: %d manifest HEADs and %d manifest GETs upstream, want 1 and 0",
					concurrentPulls, heads, gets)
			}
			if blobs := after.BlobGets + after.BlobHeads + after.CDNGets - before.BlobGets - before.BlobHeads - before.CDNGets; blobs != 0 {
				t.Errorf("%d concurrent tag pulls after the window: %d blob requests upstream, want 0", concurrentPulls, blobs)
			}
		})
	})
}
