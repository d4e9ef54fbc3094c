package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/test/testenv"
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

type fixture struct {
	db    *gorm.DB
	store *storage.Filesystem
	s     *Store
	repo  *models.Repository
	// the manifest m lists layer; blob is content of its own; v1 (version 1) and v2 (version
	// 2, v1 removed) tag m.
	m, layer, blob string
	raw            []byte
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureOn(t, testenv.Embedded())
}

func newFixtureOn(t *testing.T, e testenv.Engine) *fixture {
	t.Helper()
	db := testenv.OpenDB(t, e)
	store := must(storage.NewFilesystem(t.TempDir()))
	t.Cleanup(func() { _ = store.Close() })
	f := &fixture{db: db, store: store, s: New(db, store, slog.New(slog.DiscardHandler))}
	put := func(b []byte) string {
		d := oci.Digest(b)
		w := must(store.Writer(t.Context(), must(storage.BlobPath(d))))
		_, _ = w.Write(b)
		if err := w.Commit(t.Context()); err != nil {
			t.Fatal(err)
		}
		return d
	}
	layerBytes, blobBytes := []byte("a layer"), []byte("a blob of its own")
	f.layer, f.blob = put(layerBytes), put(blobBytes)
	layer := must(models.GetOrCreateBlob(db, &models.Blob{Digest: f.layer, Size: int64(len(layerBytes))}))
	blob := must(models.GetOrCreateBlob(db, &models.Blob{Digest: f.blob, Size: int64(len(blobBytes))}))
	f.raw = []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:%064x"},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","size":%d,"digest":%q}]}`,
		oci.MediaTypeOCIManifest, 1, len(layerBytes), f.layer))
	f.m = put(f.raw)
	mf := must(models.GetOrCreateManifest(db, &models.Manifest{Digest: f.m, MediaType: oci.MediaTypeOCIManifest,
		SchemaVersion: 2, Size: int64(len(f.raw))}, []string{layer.ID}, nil))
	v1 := must(models.GetOrCreateTag(db, "v1", mf.ID))
	v2 := must(models.GetOrCreateTag(db, "v2", mf.ID))
	f.repo = &models.Repository{PulpType: models.KindContainerRepository.PulpType, Name: "r"}
	if err := models.CreateRepository(db, f.repo); err != nil {
		t.Fatal(err)
	}
	ref := func(k models.Kind, id string) models.ContentRef { return models.ContentRef{Type: k.PulpType, ID: id} }
	for _, change := range [][2][]models.ContentRef{
		{{ref(models.KindManifest, mf.ID), ref(models.KindBlob, blob.ID), ref(models.KindTag, v1.ID)}, nil},
		{{ref(models.KindTag, v2.ID)}, {ref(models.KindTag, v1.ID)}},
	} {
		if err := db.Transaction(func(tx *gorm.DB) error {
			_, err := models.NewVersion(tx, f.repo, change[0], change[1])
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// TestImageAnswersWhatItsVersionHolds checks the lookups the registry and the pull-through
// cache share: tags, tag digests and manifests of one version or of the latest, blobs reached
// through a manifest (served) against blobs held as content of their own (Has).
func TestImageAnswersWhatItsVersionHolds(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name      string
		img       *Image
		tag, gone string
	}{
		{"version 1", f.s.Image("r", f.repo.ID, 1), "v1", "v2"},
		{"latest", f.s.Latest("r", f.repo.ID), "v2", "v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.img
			if tags, err := img.Tags(ctx); err != nil || !slices.Equal(tags, []string{tc.tag}) {
				t.Errorf("Tags = %v, %v; want [%s]", tags, err, tc.tag)
			}
			if d, err := img.TagDigest(ctx, tc.tag); err != nil || d != f.m {
				t.Errorf("TagDigest(%s) = %s, %v; want %s", tc.tag, d, err, f.m)
			}
			if _, err := img.TagDigest(ctx, tc.gone); !errors.Is(err, oci.ErrManifestUnknown) {
				t.Errorf("TagDigest(%s) error %v, want MANIFEST_UNKNOWN", tc.gone, err)
			}
			for _, ref := range []string{tc.tag, f.m} {
				m, err := img.Manifest(ctx, ref)
				if err != nil || m.Digest != f.m || !bytes.Equal(m.Raw, f.raw) || m.MediaType != oci.MediaTypeOCIManifest {
					t.Errorf("Manifest(%s) = %+v, %v", ref, m, err)
				}
			}
			for _, d := range []string{f.layer, f.blob} {
				bc, err := img.Blob(ctx, d, false)
				if err != nil || bc.File == nil {
					t.Errorf("Blob(%s) = %+v, %v; want the stored file", d, bc, err)
					continue
				}
				_ = bc.File.Close()
			}
			if ok, err := img.HasManifest(ctx, f.m); !ok || err != nil {
				t.Errorf("HasManifest = %v, %v; want true", ok, err)
			}
			if ok, err := img.HasBlob(ctx, f.blob); !ok || err != nil {
				t.Errorf("HasBlob(its own blob) = %v, %v; want true", ok, err)
			}
			if ok, err := img.HasBlob(ctx, f.layer); ok || err != nil {
				t.Errorf("HasBlob(a layer only a manifest lists) = %v, %v; want false", ok, err)
			}
		})
	}
	if _, err := f.s.Image("r", f.repo.ID, 0).Blob(ctx, f.blob, false); !errors.Is(err, oci.ErrBlobUnknown) {
		t.Errorf("Blob in version 0: %v, want BLOB_UNKNOWN", err)
	}
}

// TestStoreManifestIsVerified checks that Store.Manifest serves stored bytes only under their
// own digest, and that PutManifest refuses bytes of another digest.
func TestStoreManifestIsVerified(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	m, err := f.s.Manifest(ctx, f.m)
	if err != nil || !bytes.Equal(m.Raw, f.raw) {
		t.Fatalf("Manifest = %v, %v", m, err)
	}
	other := append(bytes.Clone(f.raw), ' ')
	d := oci.Digest(other)
	w := must(f.store.Writer(ctx, must(storage.BlobPath(d))))
	_, _ = io.Copy(w, bytes.NewReader(f.raw)) // bytes that do not hash to d
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Manifest(ctx, d); !errors.Is(err, oci.ErrManifestUnknown) {
		t.Errorf("Manifest of bytes that do not have their digest: %v, want MANIFEST_UNKNOWN", err)
	}
	if err := f.s.PutManifest(ctx, &oci.Manifest{Raw: f.raw, Digest: d}); err == nil {
		t.Error("PutManifest stored bytes under another digest")
	}
}

// fakeRemoteBlobs records the blobs asked for and answers with a blob of the digest.
type fakeRemoteBlobs struct{ asked []string }

func (r *fakeRemoteBlobs) Blob(_ context.Context, digest string, head bool) (*oci.BlobContent, error) {
	r.asked = append(r.asked, fmt.Sprintf("%s head=%v", digest, head))
	return &oci.BlobContent{Digest: digest, Size: 42}, nil
}

// TestImageBlobNotStoredGoesToRemoteBlobs checks that a blob the version holds as content of
// its own but storage lacks (an on_demand sync's) is asked of RemoteBlobs, and that nothing
// else is: not a layer only a manifest of the version lists, not a blob of another version,
// not a stored blob.
func TestImageBlobNotStoredGoesToRemoteBlobs(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		f := newFixtureOn(t, e)
		ctx := t.Context()
		remote := &fakeRemoteBlobs{}
		s := New(f.db, f.store, slog.New(slog.DiscardHandler), WithRemoteBlobs(remote))
		img := s.Image("r", f.repo.ID, 1)
		if bc, err := img.Blob(ctx, f.blob, false); err != nil || bc.File == nil {
			t.Fatalf("stored blob: %+v, %v; want the stored file", bc, err)
		} else {
			_ = bc.File.Close()
		}
		if len(remote.asked) != 0 {
			t.Fatalf("a stored blob was asked of RemoteBlobs: %v", remote.asked)
		}
		for _, d := range []string{f.blob, f.layer} {
			if err := f.store.Delete(ctx, must(storage.BlobPath(d))); err != nil {
				t.Fatal(err)
			}
		}
		for _, head := range []bool{false, true} {
			bc, err := img.Blob(ctx, f.blob, head)
			if err != nil || bc.Size != 42 {
				t.Errorf("Blob(its own blob, not stored, head=%v) = %+v, %v; want RemoteBlobs' answer", head, bc, err)
			}
		}
		if _, err := img.Blob(ctx, f.layer, false); !errors.Is(err, oci.ErrBlobUnknown) {
			t.Errorf("Blob(a layer only a manifest lists, not stored) = %v, want BLOB_UNKNOWN", err)
		}
		if _, err := s.Image("r", f.repo.ID, 0).Blob(ctx, f.blob, false); !errors.Is(err, oci.ErrBlobUnknown) {
			t.Errorf("Blob in version 0: %v, want BLOB_UNKNOWN", err)
		}
		want := []string{f.blob + " head=false", f.blob + " head=true"}
		if !slices.Equal(remote.asked, want) {
			t.Errorf("RemoteBlobs asked for %v, want %v", remote.asked, want)
		}
		if _, err := f.s.Image("r", f.repo.ID, 1).Blob(ctx, f.blob, false); !errors.Is(err, oci.ErrBlobUnknown) {
			t.Errorf("Blob(not stored) without RemoteBlobs = %v, want BLOB_UNKNOWN", err)
		}
	})
}
