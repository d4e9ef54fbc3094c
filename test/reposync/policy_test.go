package reposync

import (
	"fmt"
	"slices"
	"testing"

	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/testenv"
	"github.com/pulpgo/pulpgo/test/upstream"
)

// TestSyncOnDemand checks the on_demand and streamed policies: manifests and config blobs are
// stored, layers are recorded as blob content with a remote artifact each (remote, upstream
// name, digest, size) and never downloaded by the sync; the distribution of the repository
// then fetches each layer at its first pull, and keeps it (on_demand) or not (streamed).
func TestSyncOnDemand(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		hub := client.StartHub(t)
		imgs := pushSet(t, hub, "library/app")
		e := startServer(t, eng)
		// streamed first: what on_demand keeps would be stored content for a later sync.
		for _, policy := range []string{"streamed", "on_demand"} {
			remote := e.createRemote(t, policy, hub.URL(), "library/app", map[string]any{"policy": policy})
			repo := e.createRepo(t, policy, nil)
			hub.Reset()
			e.sync(t, repo, map[string]any{"remote": remote})
			v := e.latest(t, repo)
			blobs := e.digests(t, "blobs", v)
			layers := map[string]int64{}
			for tag, im := range imgs {
				if len(im.Children) > 0 {
					for _, c := range im.Children {
						for _, l := range c.Layers {
							layers[l.Digest] = l.Size
						}
					}
				}
				for _, l := range im.Layers {
					layers[l.Digest] = l.Size
				}
				for _, b := range im.Blobs() {
					if !slices.Contains(blobs, b.Digest) {
						t.Errorf("%s: blob %s of %s is not in the version", policy, b.Digest, tag)
					}
				}
			}
			for d := range layers {
				if n := hub.BlobGets(d); n != 0 {
					t.Errorf("%s: layer %s fetched %d times, want 0", policy, d, n)
				}
			}
			for _, b := range allBlobs(imgs) {
				if _, layer := layers[b.Digest]; !layer && policy == "on_demand" && !e.storedBlob(t, b.Digest) {
					t.Errorf("%s: config blob %s not stored", policy, b.Digest)
				}
			}

			db, err := models.Open(eng.DatabaseURL, e.srv.DataDir)
			if err != nil {
				t.Fatal(err)
			}
			var ras []models.RemoteArtifact
			if err := db.Joins("JOIN remotes ON remotes.id = remote_artifacts.remote_id").
				Where("remotes.name = ?", policy).Find(&ras).Error; err != nil {
				t.Fatal(err)
			}
			if sqlDB, err := db.DB(); err == nil {
				_ = sqlDB.Close()
			}
			got := map[string]int64{}
			for _, ra := range ras {
				got[ra.Digest] = ra.Size
				if ra.UpstreamName != "library/app" || ra.BlobID == "" {
					t.Errorf("%s: remote artifact %+v", policy, ra)
				}
			}
			if len(got) != len(layers) {
				t.Errorf("%s: %d remote artifacts, want one per layer (%d): %v", policy, len(got), len(layers), got)
			}
			for d, size := range layers {
				if got[d] != size {
					t.Errorf("%s: remote artifact of layer %s: size %d, want %d", policy, d, got[d], size)
				}
			}

			// Served: the first pull of every tag from the repository's distribution fetches
			// each layer once through the remote; a second pull fetches nothing (on_demand) or
			// every layer again (streamed).
			e.distribute(t, policy, repo)
			pullEvery := func() {
				t.Helper()
				for tag := range imgs {
					if _, _, err := e.pullAll(ctx, policy, tag); err != nil {
						t.Fatalf("%s: pull %s: %v", policy, tag, err)
					}
				}
			}
			for round, want := range []int{1, map[string]int{"on_demand": 0, "streamed": 1}[policy]} {
				// Clients that come while a streamed layer's scratch copy exists share it; a
				// pull after the copies are gone fetches again.
				client.Poll(t, "no fill running or kept", func() (bool, string) {
					n := e.fillFiles(t)
					return n == 0, fmt.Sprintf("%d staging or scratch files", n)
				})
				hub.Reset()
				pullEvery()
				for d := range layers {
					if n := hub.BlobGets(d); n != want {
						t.Errorf("%s: pull %d fetched layer %s %d times, want %d", policy, round+1, d, n, want)
					}
				}
				// A fill commits right after its client got the last byte: on_demand layers are
				// stored shortly after the pull; streamed ones never.
				client.Poll(t, policy+" layers stored after the pull", func() (bool, string) {
					n := 0
					for d := range layers {
						if e.storedBlob(t, d) {
							n++
						}
					}
					if policy == "streamed" && n > 0 {
						t.Fatalf("streamed: %d layers stored after pull %d, want none", n, round+1)
					}
					return policy == "streamed" || n == len(layers), fmt.Sprintf("%d of %d layers stored", n, len(layers))
				})
			}
		}
	})
}

// TestSyncConcurrency checks that a sync downloads in parallel but never more blobs at once
// than the remote's download_concurrency.
func TestSyncConcurrency(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		hub := client.StartHub(t)
		e := startServer(t, eng)
		for _, n := range []int{1, 3} {
			// An image of its own per round: eight 1 MiB layers none of which is stored yet.
			name := fmt.Sprintf("library/wide%d", n)
			if _, err := hub.PushLarge(ctx, name, "1", 8, 8); err != nil {
				t.Fatal(err)
			}
			remote := e.createRemote(t, name, hub.URL(), name, map[string]any{"download_concurrency": n})
			repo := e.createRepo(t, name, nil)
			hub.Reset()
			hub.SetBlobThrottle(4 * upstream.MiB) // each layer takes a quarter second: downloads overlap
			e.sync(t, repo, map[string]any{"remote": remote})
			hub.SetBlobThrottle(0)
			if got := hub.MaxCDNInFlight(); got != n {
				t.Errorf("download_concurrency %d: at most %d blob downloads at once, want exactly %d", n, got, n)
			}
		}
	})
}
