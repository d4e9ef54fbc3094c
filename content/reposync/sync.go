package reposync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/pulpgo/pulpgo/content/fill"
	"github.com/pulpgo/pulpgo/content/local"
	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/remotes"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/content/upstream"
	"github.com/pulpgo/pulpgo/models"
)

// Defaults of a remote that leaves download_concurrency or max_retries unset (Pulp's).
const (
	DefaultConcurrency = 10
	DefaultMaxRetries  = 3
)

// Config is what a Syncer needs.
type Config struct {
	// Storage holds blobs and manifests under storage.BlobPath; Store reads and writes
	// manifests there; Fills downloads blobs into it (share the content app's in one process).
	Storage storage.Driver
	Store   *local.Store
	Fills   *fill.Fills
	Logger  *slog.Logger
	// Timeout bounds each tag list page, manifest and HEAD request (0: the client's 30 s).
	Timeout time.Duration
	// Backoff is the first wait before a retry, doubled for each next one (0: 250 ms).
	Backoff time.Duration
	// Observer, when set, is told of the syncs' upstream requests (the process's metrics).
	Observer upstream.Observer
}

// Syncer runs the upstream side of repository syncs. It is safe for concurrent use.
type Syncer struct{ cfg Config }

// New returns a Syncer.
func New(cfg Config) *Syncer {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 250 * time.Millisecond
	}
	return &Syncer{cfg: cfg}
}

// Progress report names and codes, as Pulp 2.29's sync names them.
const (
	msgTagList    = "Downloading tag list"
	codeTagList   = "sync.downloading.tag_list"
	msgManifests  = "Processing Manifests"
	msgCosign     = "Processing Cosign Companion Tags"
	codeManifests = "sync.processing.manifest"
	msgArtifacts  = "Downloading Artifacts"
	codeArtifacts = "sync.downloading.artifacts"
)

// Sync walks req.Remote's upstream repository: everything it returns is verified and stored
// (or, for layers of an on_demand or streamed remote, deferred). A tag of req.Held costs one
// HEAD when it has not moved; any other tag one GET. It fails on the first error that
// retries (the remote's max_retries, with backoff, honouring a 429's Retry-After) did not cure.
func (s *Syncer) Sync(ctx context.Context, req models.SyncRequest, progress *models.Progress) (*models.SyncResult, error) {
	remote := req.Remote
	ucfg := remotes.Config(remote, s.cfg.Timeout)
	ucfg.Observer = s.cfg.Observer
	cl, err := upstream.New(ucfg)
	if err != nil {
		return nil, fmt.Errorf("remote %s: %w", remote.Name, err)
	}
	defer cl.Close()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r := &run{s: s, cl: cl, remote: remote, name: upstreamName(remote), held: req.Held, progress: progress,
		deferred: remote.Policy == "on_demand" || remote.Policy == "streamed",
		retries:  DefaultMaxRetries, ctx: ctx, cancel: cancel,
		blobs: map[string]bool{}, children: map[string]*childCall{}, synced: map[string]bool{}}
	if remote.MaxRetries != nil && *remote.MaxRetries >= 0 {
		r.retries = int(*remote.MaxRetries)
	}
	n := DefaultConcurrency
	if remote.DownloadConcurrency != nil && *remote.DownloadConcurrency > 0 {
		n = int(*remote.DownloadConcurrency)
	}
	r.slots = make(chan struct{}, n)
	return r.sync()
}

// upstreamName is the remote's upstream name, in Docker Hub's library namespace when it has
// none there (Pulp's namespaced_upstream_name).
func upstreamName(remote *models.Remote) string {
	if !strings.Contains(remote.UpstreamName, "/") && dockerHub.MatchString(remote.URL) {
		return "library/" + remote.UpstreamName
	}
	return remote.UpstreamName
}

var dockerHub = regexp.MustCompile(`(?i)registry[-,\w]*\.docker\.io`)

// run is one sync.
type run struct {
	s        *Syncer
	cl       *upstream.Client
	remote   *models.Remote
	name     string
	held     map[string]string
	progress *models.Progress
	deferred bool
	retries  int
	slots    chan struct{} // one per upstream request or blob download in progress

	ctx    context.Context
	cancel context.CancelCauseFunc

	artifacts *models.ProgressBar
	downloads sync.WaitGroup

	mu       sync.Mutex
	err      error
	blobs    map[string]bool       // blob digests met
	children map[string]*childCall // index children fetched, by digest
	synced   map[string]bool       // manifest digests synced (for cosign companions)
	result   models.SyncResult
}

// childCall is the one fetch of an index child that several indexes list.
type childCall struct {
	done chan struct{}
	m    *oci.Manifest
	err  error
}

func (r *run) sync() (*models.SyncResult, error) {
	one := int64(1)
	bar := r.progress.Bar(msgTagList, codeTagList, &one)
	var tags []string
	err := r.retry(func() (err error) {
		tags, err = r.cl.Tags(r.ctx, r.name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list the tags of %s at %s: %w", r.name, r.remote.URL, err)
	}
	sel := selectRefs(tags, r.remote.Includes, r.remote.Excludes)
	bar.Add(1)
	bar.Finish()

	r.artifacts = r.progress.Bar(msgArtifacts, codeArtifacts, nil)
	r.process(msgManifests, sel.refs)
	if r.failed() == nil {
		r.mu.Lock()
		companions := sel.companions(r.synced)
		r.mu.Unlock()
		if len(companions) > 0 {
			r.process(msgCosign, companions)
		}
	}
	r.downloads.Wait()
	if err := r.failed(); err != nil {
		return nil, err
	}
	if r.ctx.Err() != nil {
		// The task's context ended (the worker is stopping): nothing partial is returned.
		return nil, context.Cause(r.ctx)
	}
	r.artifacts.Finish()
	return &r.result, nil
}

// failed returns the first error of the run, or nil.
func (r *run) failed() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// fail records err as the run's error (the first one wins) and stops the rest of the run.
func (r *run) fail(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
	r.cancel(err)
}

// process resolves refs (tags and digests) concurrently, under a "sync.processing.manifest"
// report; their blobs are downloaded as they are found.
func (r *run) process(msg string, refs []string) {
	total := int64(len(refs))
	bar := r.progress.Bar(msg, codeManifests, &total)
	digests := make([]string, len(refs))
	var wg sync.WaitGroup
	for i, ref := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r.ctx.Err() != nil {
				r.fail(context.Cause(r.ctx))
				return
			}
			d, err := r.resolve(ref)
			if err != nil {
				r.fail(err)
				return
			}
			digests[i] = d
			bar.Add(1)
		}()
	}
	wg.Wait()
	if r.failed() != nil {
		return
	}
	bar.Finish()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, ref := range refs {
		if oci.IsDigest(ref) {
			r.result.Digests = append(r.result.Digests, digests[i])
		} else {
			r.result.Tags = append(r.result.Tags, models.SyncedTag{Name: ref, Digest: digests[i]})
		}
	}
}

// resolve finds the manifest ref names, stored or fetched, walks it, and returns its digest.
func (r *run) resolve(ref string) (string, error) {
	var (
		m   *oci.Manifest
		err error
	)
	switch d, held := r.held[ref]; {
	case oci.IsDigest(ref):
		m, err = r.manifest(ref, ref)
	case held:
		// The tag is in the repository: a HEAD says whether it moved.
		var desc upstream.Descriptor
		err = r.request(func() (err error) {
			desc, err = r.cl.HeadManifest(r.ctx, r.name, ref, oci.ManifestMediaTypes)
			return err
		})
		switch {
		case errors.Is(err, upstream.ErrMissingDigest):
			m, err = r.fetch(ref, "")
		case err != nil:
			return "", fmt.Errorf("head manifest %s:%s: %w", r.name, ref, err)
		case desc.Digest == d:
			m, err = r.manifest(d, d)
		default:
			m, err = r.manifest(desc.Digest, desc.Digest)
		}
	default:
		m, err = r.fetch(ref, "")
	}
	if err != nil {
		return "", err
	}
	if err := r.walk(m); err != nil {
		return "", err
	}
	r.mu.Lock()
	r.synced[m.Digest] = true
	r.mu.Unlock()
	return m.Digest, nil
}

// manifest returns the stored manifest digest, or fetches it by ref.
func (r *run) manifest(digest, ref string) (*oci.Manifest, error) {
	if m, err := r.s.cfg.Store.Manifest(r.ctx, digest); err == nil {
		return m, nil
	}
	return r.fetch(ref, digest)
}

// badManifestError is a manifest the upstream sent that cannot be stored: not a manifest, or
// not the digest asked for. Retrying does not help.
type badManifestError struct{ err error }

func (e *badManifestError) Error() string { return e.err.Error() }
func (e *badManifestError) Unwrap() error { return e.err }

// fetch GETs the manifest ref, checks that its computed digest is want (when want is set) and
// stores it byte for byte.
func (r *run) fetch(ref, want string) (*oci.Manifest, error) {
	var m *oci.Manifest
	err := r.request(func() error {
		body, desc, err := r.cl.GetManifest(r.ctx, r.name, ref, oci.ManifestMediaTypes)
		if err != nil {
			return err
		}
		if m, err = oci.ParseManifest(body, desc.MediaType); err != nil {
			return &badManifestError{fmt.Errorf("manifest %s of %s is not a valid manifest: %w", ref, r.name, err)}
		}
		if want != "" && m.Digest != want && !oci.ManifestHasDigest(body, want) {
			return &badManifestError{fmt.Errorf("manifest %s of %s: the upstream sent bytes of digest %s", want, r.name, m.Digest)}
		}
		if want != "" {
			m.Digest = want
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fetch manifest %s%s: %w", r.name, refSep(ref), err)
	}
	if err := r.s.cfg.Store.PutManifest(r.ctx, m); err != nil {
		return nil, fmt.Errorf("store manifest %s of %s: %w", m.Digest, r.name, err)
	}
	return m, nil
}

func refSep(ref string) string {
	if oci.IsDigest(ref) {
		return "@" + ref
	}
	return ":" + ref
}

// walk takes care of what m needs: an index's every child manifest (each fetched once per
// run), and the blobs of every image manifest.
func (r *run) walk(m *oci.Manifest) error {
	if !oci.IsIndex(m.MediaType) {
		r.blobsOf(m)
		return nil
	}
	for _, d := range m.Manifests {
		child, err := r.child(d.Digest)
		if err != nil {
			return err
		}
		if oci.IsIndex(child.MediaType) {
			return &badManifestError{fmt.Errorf("index %s of %s lists another index, %s", m.Digest, r.name, d.Digest)}
		}
		r.blobsOf(child)
	}
	return nil
}

// child returns the index child digest, fetching it once however many indexes list it.
func (r *run) child(digest string) (*oci.Manifest, error) {
	r.mu.Lock()
	c, ok := r.children[digest]
	if !ok {
		c = &childCall{done: make(chan struct{})}
		r.children[digest] = c
	}
	r.mu.Unlock()
	if !ok {
		c.m, c.err = r.manifest(digest, digest)
		close(c.done)
	}
	select {
	case <-c.done:
		return c.m, c.err
	case <-r.ctx.Done():
		return nil, context.Cause(r.ctx)
	}
}

// blobsOf starts the download of m's config and layers that are not stored yet (each once per
// run); layers of an on_demand or streamed remote are deferred instead. Foreign layers are
// never fetched.
func (r *run) blobsOf(m *oci.Manifest) {
	if m.Config != nil {
		r.blob(m.Config.Digest, m.Config.Size, false)
	}
	for _, l := range m.Layers {
		if !oci.Foreign(l.MediaType) {
			r.blob(l.Digest, l.Size, r.deferred)
		}
	}
}

func (r *run) blob(digest string, size int64, deferred bool) {
	r.mu.Lock()
	if r.blobs[digest] {
		r.mu.Unlock()
		return
	}
	r.blobs[digest] = true
	r.mu.Unlock()
	if r.stored(digest) {
		return
	}
	if deferred {
		r.mu.Lock()
		r.result.Deferred = append(r.result.Deferred, models.RemoteArtifact{RemoteID: r.remote.ID,
			Digest: digest, Size: size, UpstreamName: r.name})
		r.mu.Unlock()
		return
	}
	r.downloads.Add(1)
	go func() {
		defer r.downloads.Done()
		if err := r.download(digest); err != nil {
			r.fail(err)
		}
	}()
}

func (r *run) stored(digest string) bool {
	p, err := storage.BlobPath(digest)
	if err != nil {
		return false
	}
	_, err = r.s.cfg.Storage.Stat(r.ctx, p)
	return err == nil
}

// download fetches the blob digest through the fill engine: one fill per digest in this
// process (a pull of the same blob joins it), one across processes (the Fills' Locker), and
// nothing committed that does not have its digest.
func (r *run) download(digest string) error {
	src := func(ctx context.Context, off int64) (io.ReadCloser, int64, error) {
		return r.cl.GetBlob(ctx, r.name, digest, off)
	}
	err := r.request(func() error {
		f := r.s.cfg.Fills.Start(r.ctx, digest, src, nil)
		select {
		case <-f.Done():
			return f.Err()
		case <-r.ctx.Done():
			return context.Cause(r.ctx)
		}
	})
	if err != nil {
		return fmt.Errorf("download blobs of %s: %w", r.name, err)
	}
	r.artifacts.Add(1)
	return nil
}

// request runs one upstream operation in a download slot, with retries.
func (r *run) request(op func() error) error {
	select {
	case r.slots <- struct{}{}:
	case <-r.ctx.Done():
		return context.Cause(r.ctx)
	}
	defer func() { <-r.slots }()
	return r.retry(op)
}

// retry runs op until it succeeds, fails for good, or has failed r.retries more times; the
// wait doubles from the configured backoff and is at least what a 429 asked for.
func (r *run) retry(op func() error) error {
	wait := r.s.cfg.Backoff
	for attempt := 0; ; attempt++ {
		err := op()
		if err == nil || attempt >= r.retries || !retryable(r.ctx, err) {
			return err
		}
		d := wait
		var ue *upstream.Error
		if errors.As(err, &ue) && ue.RetryAfter > d {
			d = min(ue.RetryAfter, maxRetryAfter)
		}
		r.s.cfg.Logger.Info("sync: retrying upstream request", "remote", r.remote.Name, "attempt", attempt+1, "wait", d, "err", err)
		select {
		case <-time.After(d):
		case <-r.ctx.Done():
			return context.Cause(r.ctx)
		}
		wait *= 2
	}
}

// maxRetryAfter bounds how long a 429's Retry-After makes a sync wait before one retry.
const maxRetryAfter = time.Minute

// retryable reports whether err may go away on its own: the upstream unreachable, timing out,
// failing with a 5xx or throttling, or a download cut short. Wrong bytes, a 404 or another
// refusal, and the run's own end are not.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var (
		dm  *fill.DigestMismatchError
		sm  *fill.SizeMismatchError
		bad *badManifestError
		ue  *upstream.Error
	)
	switch {
	case errors.As(err, &dm), errors.As(err, &sm), errors.As(err, &bad):
		return false
	case errors.As(err, &ue):
		return upstream.IsUnavailable(err)
	}
	return !errors.Is(err, context.Canceled)
}
