package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Docker schema 2 media types of the moving images' config and layers.
const (
	mediaTypeDockerConfig = "application/vnd.docker.container.image.v1+json"
	mediaTypeDockerLayer  = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// MovingTag is the tag of every moving image.
const MovingTag = "latest"

// MovingName returns the repository of the i-th moving image,
// "library/farm-<i>".
func MovingName(i int) string { return fmt.Sprintf("library/farm-%d", i) }

// mover keeps the moving images: their layers, pushed once, and the
// generation their tags point at. It is safe for concurrent use.
type mover struct {
	layers [][]memBlob // per image: a base layer all share, then its own

	pushMu sync.Mutex                 // held while a generation is pushed
	cur    atomic.Pointer[generation] // the last generation pushed whole

	cancel context.CancelFunc
	done   chan struct{} // closed when the ticker goroutine has ended
}

// generation is one set of the moving tags' images.
type generation struct {
	n       int
	images  []Image
	digests map[string]string // repository -> manifest digest of its tag
}

// PushMoving pushes n small Docker schema 2 images, MovingName(0) to
// MovingName(n-1), each tagged MovingTag, and then, every every (never when
// every is 0), moves each tag to a new image: the same layers (a base layer
// all images share and one of its own) under a new config, so every tag
// gets a new manifest digest while the old manifests and configs stay
// fetchable by digest. It returns the first generation; MovingImages
// returns the current one. It may be called once per Upstream; Close stops
// the moves.
func (u *Upstream) PushMoving(ctx context.Context, n int, every time.Duration) ([]Image, error) {
	if n <= 0 || every < 0 {
		return nil, fmt.Errorf("push moving images: want n > 0 and every >= 0, got %d and %v", n, every)
	}
	if u.moving.Load() != nil {
		return nil, errMovingTwice
	}
	base, err := memLayer(textFile{"etc/farm-base", "the base layer every moving image shares\n"})
	if err != nil {
		return nil, err
	}
	m := &mover{done: make(chan struct{})}
	for i := range n {
		own, err := memLayer(textFile{"etc/farm-image", MovingName(i) + "\n"})
		if err != nil {
			return nil, err
		}
		m.layers = append(m.layers, []memBlob{base, own})
		for _, l := range m.layers[i] {
			if err := u.uploadBlob(ctx, MovingName(i), l); err != nil {
				return nil, err
			}
		}
	}
	if err := u.pushGeneration(ctx, m, 0); err != nil {
		return nil, err
	}
	moveCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	if !u.moving.CompareAndSwap(nil, m) {
		cancel()
		return nil, errMovingTwice
	}
	go func() {
		defer close(m.done)
		if every == 0 {
			return
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-moveCtx.Done():
				return
			case <-tick.C:
				if err := u.pushGeneration(moveCtx, m, m.cur.Load().n+1); err != nil && moveCtx.Err() == nil {
					u.log.Warn("moving the tags failed", "err", err)
				}
			}
		}
	}()
	return m.currentImages(), nil
}

// errMovingTwice is PushMoving's answer when it was called before.
var errMovingTwice = errors.New("push moving images: already pushed")

// MoveTags moves every moving tag to a new image now (the next generation)
// and returns the new images.
func (u *Upstream) MoveTags(ctx context.Context) ([]Image, error) {
	m := u.moving.Load()
	if m == nil {
		return nil, fmt.Errorf("move tags: no moving images (PushMoving first)")
	}
	if err := u.pushGeneration(ctx, m, m.cur.Load().n+1); err != nil {
		return nil, err
	}
	return m.currentImages(), nil
}

// MovingImages returns the images the moving tags point at now; nil before
// PushMoving.
func (u *Upstream) MovingImages() []Image {
	if m := u.moving.Load(); m != nil {
		return m.currentImages()
	}
	return nil
}

// MovingGeneration returns how many times the moving tags have moved.
func (u *Upstream) MovingGeneration() int {
	if m := u.moving.Load(); m != nil {
		return m.cur.Load().n
	}
	return 0
}

// movingDigest returns the manifest digest the moving tag name:ref points
// at, if it is one. The front serves moving tags by that digest, so a tag
// being moved in the registry is never read half-written.
func (u *Upstream) movingDigest(name, ref string) (string, bool) {
	m := u.moving.Load()
	if m == nil || ref != MovingTag {
		return "", false
	}
	d, ok := m.cur.Load().digests[name]
	return d, ok
}

func (m *mover) currentImages() []Image {
	return append([]Image(nil), m.cur.Load().images...)
}

// stop ends the ticker goroutine and waits for it.
func (m *mover) stop() {
	m.cancel()
	<-m.done
}

// pushGeneration pushes generation gen of every moving image (its config,
// then its manifest under MovingTag) and then makes it current, unless a
// later one was pushed meanwhile.
func (u *Upstream) pushGeneration(ctx context.Context, m *mover, gen int) error {
	m.pushMu.Lock()
	defer m.pushMu.Unlock()
	if cur := m.cur.Load(); cur != nil && gen <= cur.n {
		return nil // a concurrent move got there first
	}
	g := &generation{n: gen, images: make([]Image, len(m.layers)), digests: map[string]string{}}
	for i, layers := range m.layers {
		img, err := u.pushMovingImage(ctx, MovingName(i), layers, gen)
		if err != nil {
			return err
		}
		g.images[i], g.digests[img.Name] = img, img.ManifestDigest
	}
	m.cur.Store(g)
	return nil
}

// pushMovingImage pushes the config of generation gen and the manifest of
// name:MovingTag that names it and layers.
func (u *Upstream) pushMovingImage(ctx context.Context, name string, layers []memBlob, gen int) (Image, error) {
	var cfg imageConfig
	cfg.Created = epoch.Add(time.Duration(gen) * time.Second).Format(time.RFC3339)
	cfg.Architecture, cfg.OS = "amd64", "linux"
	cfg.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cfg.Config.Cmd = []string{"sh"}
	cfg.Config.Labels = map[string]string{"org.pulpgo.test.generation": fmt.Sprint(gen), "org.pulpgo.test.image": name}
	cfg.RootFS.Type = "layers"
	img := Image{Name: name, Tag: MovingTag, MediaType: MediaTypeDockerManifest}
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
		img.Layers = append(img.Layers, Blob{Digest: l.digest, Size: int64(len(l.data)), MediaType: mediaTypeDockerLayer})
	}
	cb, err := json.Marshal(cfg)
	if err != nil {
		return Image{}, err
	}
	config := newMemBlob(cb)
	if err := u.uploadBlob(ctx, name, config); err != nil {
		return Image{}, err
	}
	img.Config = &Blob{Digest: config.digest, Size: int64(len(cb)), MediaType: mediaTypeDockerConfig}
	mb, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     MediaTypeDockerManifest,
		"config":        img.Config,
		"layers":        img.Layers,
	})
	if err != nil {
		return Image{}, err
	}
	manifest := newMemBlob(mb)
	img.ManifestDigest, img.Size = manifest.digest, int64(len(mb))
	if _, err := u.registryDo(ctx, http.MethodPut, "/v2/"+name+"/manifests/"+MovingTag, MediaTypeDockerManifest, mb, http.StatusCreated); err != nil {
		return Image{}, fmt.Errorf("push %s:%s (generation %d): %w", name, MovingTag, gen, err)
	}
	return img, nil
}
