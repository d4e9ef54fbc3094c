package fill

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/pulpgo/pulpgo/content/storage"
)

// Source opens the upstream bytes of one object from offset on; the caller wraps its upstream
// client's blob fetch in one. size is the number of bytes body will yield (the blob's size
// less offset), or -1 when upstream does not announce it. A fill calls its Source with offset
// 0 first, on the fill's own context, and again with the number of bytes it has staged when
// the body breaks and the fill resumes (see WithResumes); a Source answering such a call
// must yield the blob's bytes from offset on (an upstream that ignores a Range header is
// skipped to offset by the Source), and the fill goes on hashing from where it stopped.
type Source func(ctx context.Context, offset int64) (body io.ReadCloser, size int64, err error)

// CommitFunc is called once the blob is in storage, with its size, so the caller can record it
// (for example in the database). It runs on the fill's detached context.
type CommitFunc func(ctx context.Context, size int64) error

// DefaultTimeout is how long a fill may go without staging a byte, from the upstream
// request to the commit, before it fails.
const DefaultTimeout = time.Hour

// bufferSize is the size of the one buffer a fill copies upstream bytes through.
const bufferSize = 64 << 10

// DefaultResumes is how many times a fill reopens its Source after the body broke, by default.
const DefaultResumes = 5

// DefaultResumeBackoff is the wait before the first resume; it doubles with each one.
const DefaultResumeBackoff = 100 * time.Millisecond

// DefaultSpaceMargin is the room a fill leaves free, beyond the blob's size, on the
// filesystems it writes to (the staging directory's and the driver's, when the driver can
// tell; see storage.Spacer): the database and the other writes of the process live there too.
const DefaultSpaceMargin = 8 << 20

// Option configures Fills.
type Option func(*Fills)

// WithTimeout fails a fill that goes d without staging a byte (instead of DefaultTimeout).
// It is measured on progress, not on the whole fill, so a large blob from a slow but live
// upstream is never cut; a stalled read is the upstream client's idle timeout's business.
func WithTimeout(d time.Duration) Option {
	return func(fs *Fills) { fs.timeout = d }
}

// WithResumes lets each fill reopen its Source up to n times (0: never) after the body broke
// mid-blob, waiting backoff before the first resume and twice as long before each next one.
// The default is DefaultResumes after DefaultResumeBackoff.
func WithResumes(n int, backoff time.Duration) Option {
	return func(fs *Fills) { fs.resumes, fs.backoff = max(n, 0), backoff }
}

// WithRetryable sets which errors of a Source (a failed read of its body, or a failed call to
// reopen it) a fill resumes after; the others fail the fill at once. The default resumes
// after every error but the fill's own timeout; the content app passes the upstream client's
// IsUnavailable, so that a protocol violation (a wrong Content-Range) or a 404 fails at once.
func WithRetryable(retryable func(error) bool) Option {
	return func(fs *Fills) { fs.retryable = retryable }
}

// WithSpaceMargin makes a fill leave margin bytes free beyond the blob's size instead of
// DefaultSpaceMargin. A fill checks the free space before it asks upstream for the blob
// and again once upstream has announced its size, and fails with *storage.InsufficientSpaceError
// (before any reader got a byte, so clients get an error answer rather than a cut transfer)
// when there is less than that.
func WithSpaceMargin(margin int64) Option {
	return func(fs *Fills) { fs.margin = max(margin, 0) }
}

// WithLocker makes fills take l's lock on their digest before fetching, so that content
// processes sharing one storage fetch each blob once. The default is NoLocker.
func WithLocker(l Locker) Option {
	return func(fs *Fills) { fs.locker = l }
}

// Observer is told of fills as they start, are joined and end (the process's metrics). Its
// methods must be cheap and safe for concurrent use; they are called outside the fills' lock.
type Observer interface {
	// FillStarted is called when a fill of a digest starts fetching in this process (after the
	// cross-process lock, the blob not stored).
	FillStarted()
	// FillJoined is called when a caller joins the fill already running for its digest, or a
	// fill finds, once it holds the lock, that another process has just stored the blob.
	FillJoined()
	// FillEnded is called when a fill ends: ok when its blob is in storage.
	FillEnded(ok bool)
}

// noObserver is the Observer of Fills without WithObserver.
type noObserver struct{}

func (noObserver) FillStarted()   {}
func (noObserver) FillJoined()    {}
func (noObserver) FillEnded(bool) {}

// WithObserver makes fills report to o.
func WithObserver(o Observer) Option {
	return func(fs *Fills) { fs.observer = o }
}

// Fills runs at most one fill per digest in this process: the first Start of a digest fetches
// it from upstream into a staging file and commits it to the driver; later Starts of the same
// digest join that fill until it ends. A fill that failed is forgotten, so the next Start
// fetches again.
type Fills struct {
	driver  storage.Driver
	staging *Staging
	logger  *slog.Logger
	timeout time.Duration
	locker  Locker
	// observer is told of starts, joins and ends.
	observer Observer

	resumes   int
	backoff   time.Duration
	retryable func(error) bool
	margin    int64 // bytes left free beyond a blob's size

	mu    sync.Mutex
	fills map[string]*Fill // running fills by digest; also guards each Fill's hooks
	wg    sync.WaitGroup
	// spaceMu makes a fill's space check and the publication of its size one step, so that
	// fills starting together each count the others' room.
	spaceMu sync.Mutex
}

// New returns Fills that commit to driver and write staging files in staging. When staging is
// on the same filesystem as a driver implementing storage.Mover, a commit is a rename. A nil
// logger discards.
func New(driver storage.Driver, staging *Staging, logger *slog.Logger, opts ...Option) *Fills {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	fs := &Fills{
		driver:    driver,
		staging:   staging,
		logger:    logger,
		timeout:   DefaultTimeout,
		locker:    NoLocker{},
		fills:     make(map[string]*Fill),
		resumes:   DefaultResumes,
		backoff:   DefaultResumeBackoff,
		retryable: func(error) bool { return true },
		margin:    DefaultSpaceMargin,
	}
	for _, opt := range opts {
		opt(fs)
	}
	if fs.observer == nil {
		fs.observer = noObserver{}
	}
	return fs
}

// Claim returns the running fill of digest (started false), or starts one that calls src
// (started true) on behalf of owner, an opaque label of whose Source it is (Owner returns it).
// A caller that joins a fill of another owner must check on its own that it may read the
// blob. onVerified, if not nil, is called by a fill this call starts once the bytes src
// delivered are verified, before any reader can read their end.
func (fs *Fills) Claim(ctx context.Context, digest, owner string, src Source, onVerified func()) (f *Fill, started bool) {
	return fs.start(ctx, digest, owner, src, nil, onVerified)
}

// Start returns the running fill of digest, or starts one that calls src. The fill runs on
// context.WithoutCancel(ctx) bounded by the fill timeout, so it goes on when the client that
// started it leaves. onCommit, if not nil, is called once after the blob is in storage, whether
// this call started the fill or joined it; it is not called when the fill fails.
func (fs *Fills) Start(ctx context.Context, digest string, src Source, onCommit CommitFunc) *Fill {
	f, _ := fs.start(ctx, digest, "", src, onCommit, nil)
	return f
}

func (fs *Fills) start(ctx context.Context, digest, owner string, src Source, onCommit CommitFunc, onVerified func()) (*Fill, bool) {
	fs.mu.Lock()
	if f, ok := fs.fills[digest]; ok {
		if onCommit != nil {
			f.hooks = append(f.hooks, onCommit)
		}
		fs.mu.Unlock()
		fs.observer.FillJoined()
		return f, false
	}
	f := newFill(fs.driver, digest)
	f.owner, f.onVerified = owner, onVerified
	if onCommit != nil {
		f.hooks = append(f.hooks, onCommit)
	}
	fs.fills[digest] = f
	fs.wg.Add(1)
	fs.mu.Unlock()

	fctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	watchdog := time.AfterFunc(fs.timeout, func() { cancel(context.DeadlineExceeded) })
	f.progress = func() { watchdog.Reset(fs.timeout) }
	go func() {
		defer fs.wg.Done()
		defer cancel(nil)
		defer watchdog.Stop()
		fs.run(fctx, f, src)
	}()
	return f, true
}

// Wait blocks until every fill started so far has ended, for a graceful shutdown.
func (fs *Fills) Wait() { fs.wg.Wait() }

// run performs the fill, publishes its outcome, runs the commit hooks and forgets the fill.
func (fs *Fills) run(ctx context.Context, f *Fill, src Source) {
	defer close(f.done)
	log := fs.logger.With("digest", f.digest)
	err := fs.fill(ctx, f, src)
	if f.counted {
		defer fs.observer.FillEnded(err == nil)
	}
	if err != nil {
		fs.mu.Lock()
		delete(fs.fills, f.digest)
		f.hooks = nil
		fs.mu.Unlock()
		staging := f.fail(err)
		if staging != "" {
			if rerr := os.Remove(staging); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				log.Error("remove staging file", "path", staging, "error", rerr)
			}
		}
		log.Warn("blob fill failed", "error", err)
		return
	}
	size := f.finalSize()
	log.Debug("blob filled", "size", size)
	// Hooks added by Starts that join while earlier hooks run are picked up by the next round;
	// the fill is forgotten only when no hook is pending, under the same lock Start takes.
	for {
		fs.mu.Lock()
		hooks := f.hooks
		f.hooks = nil
		if len(hooks) == 0 {
			delete(fs.fills, f.digest)
			fs.mu.Unlock()
			return
		}
		fs.mu.Unlock()
		for _, hook := range hooks {
			if err := hook(ctx, size); err != nil {
				log.Error("record filled blob", "size", size, "error", err)
			}
		}
	}
}

// fill fetches, verifies and commits the blob; it returns why it failed.
func (fs *Fills) fill(ctx context.Context, f *Fill, src Source) error {
	algorithm, _, err := storage.ParseDigest(f.digest)
	if err != nil {
		return err
	}
	blobPath, err := storage.BlobPath(f.digest)
	if err != nil {
		return err
	}
	unlock, err := fs.locker.Lock(ctx, f.digest)
	if err != nil {
		return fmt.Errorf("lock blob %s: %w", f.digest, err)
	}
	defer unlock()

	// The blob may have been stored since the caller looked: by a fill that just ended, or by
	// another process that held the lock.
	info, err := fs.driver.Stat(ctx, blobPath)
	if err == nil {
		fs.observer.FillJoined() // another process's fill, joined through the lock
		f.setStored(info.Size)
		return nil
	}
	var notFound *storage.PathNotFoundError
	if !errors.As(err, &notFound) {
		return fmt.Errorf("stat blob %s: %w", f.digest, err)
	}
	// Counted only now: a fill that found the blob stored, or could not take the lock, fetched
	// nothing.
	f.counted = true
	fs.observer.FillStarted()

	if err := fs.checkSpace(0); err != nil {
		return fmt.Errorf("stage blob %s: %w", f.digest, err)
	}
	fs.logger.Debug("fetching blob from upstream", "digest", f.digest)
	body, size, err := src(ctx, 0)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = fmt.Errorf("%w: %w", cause, err) // the fill's timeout, when it ran out
		}
		return fmt.Errorf("fetch blob %s: %w", f.digest, err)
	}
	// Checked before the size is published, so that waiting clients get the error rather than
	// headers announcing a blob that cannot be stored; the bytes other fills still have to
	// write count as taken.
	fs.spaceMu.Lock()
	if err := fs.checkSpace(max(size, 0) + fs.pendingBytes(f)); err != nil {
		fs.spaceMu.Unlock()
		body.Close()
		return fmt.Errorf("stage blob %s: %w", f.digest, err)
	}
	f.setSize(size)
	fs.spaceMu.Unlock()

	file, err := fs.staging.createFile()
	if err != nil {
		body.Close()
		return fmt.Errorf("stage blob %s: %w", f.digest, err)
	}
	defer file.Close()
	f.setStaging(file.Name())
	up, err := startUpload(ctx, fs.driver, f, file.Name(), blobPath)
	if err != nil {
		return fmt.Errorf("stage blob %s: %w", f.digest, err)
	}
	defer func() {
		if err := up.close(ctx); err != nil {
			fs.logger.Warn("cancel upload of a failed fill", "digest", f.digest, "error", err)
		}
	}()

	st := &stager{f: f, out: storage.NewWriteback(file, 0), h: storage.NewHash(algorithm), size: size}
	sum, err := fs.fetch(ctx, st, src, body)
	if err != nil {
		return err
	}
	total := st.total
	if got := algorithm + ":" + hex.EncodeToString(sum); got != f.digest {
		return &DigestMismatchError{Digest: f.digest, Got: got}
	}
	// The bytes are verified: readers may finish now, while the staging file is made durable
	// (fsync of a large blob takes a while) and committed.
	if f.onVerified != nil {
		f.onVerified()
	}
	f.setVerified(total)
	// A staging file that is uploaded (up) is not what storage keeps: no need to make it durable.
	if up == nil {
		if err := file.Sync(); err != nil {
			return fmt.Errorf("stage blob %s: %w", f.digest, err)
		}
	}
	if err := file.Close(); err != nil {
		return fmt.Errorf("stage blob %s: %w", f.digest, err)
	}

	if up != nil {
		err = fs.commitUpload(ctx, f, up, file.Name(), total)
	} else {
		err = fs.commit(ctx, f, file.Name(), blobPath)
	}
	if err != nil {
		return fmt.Errorf("commit blob %s: %w", f.digest, err)
	}
	return nil
}

// pendingBytes is what the running fills other than self have yet to write of the sizes
// they announced.
func (fs *Fills) pendingBytes(self *Fill) int64 {
	fs.mu.Lock()
	running := make([]*Fill, 0, len(fs.fills))
	for _, f := range fs.fills {
		if f != self {
			running = append(running, f)
		}
	}
	fs.mu.Unlock()
	var n int64
	for _, f := range running {
		n += f.pending()
	}
	return n
}

// checkSpace fails with *storage.InsufficientSpaceError when the staging directory's
// filesystem, or the driver's when it can tell (storage.Spacer), has fewer than size bytes
// and the margin free.
func (fs *Fills) checkSpace(size int64) error {
	need := size + fs.margin
	if err := storage.CheckSpace(fs.staging.Dir(), need); err != nil {
		return err
	}
	sp, ok := fs.driver.(storage.Spacer)
	if !ok {
		return nil
	}
	free, err := sp.FreeSpace()
	if err != nil || free >= need {
		return nil // unmeasured: the writes themselves will tell
	}
	return &storage.InsufficientSpaceError{Dir: "storage", Free: free, Need: need}
}

// commit puts the verified staging file at blobPath: a Move when the driver can take a local
// file, otherwise a copy through a Writer followed by the removal of the staging file. New
// readers open the staging file until it is about to be moved or removed, then storage.
func (fs *Fills) commit(ctx context.Context, f *Fill, staging, blobPath string) error {
	if m, ok := fs.driver.(storage.Mover); ok {
		f.setStagingGone()
		if err := m.Move(ctx, staging, blobPath); err != nil {
			return err
		}
		f.setCommitted()
		return nil
	}
	src, err := os.Open(staging)
	if err != nil {
		return err
	}
	defer src.Close()
	w, err := fs.driver.Writer(ctx, blobPath)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := io.Copy(w, src); err != nil {
		return err
	}
	if err := w.Commit(ctx); err != nil {
		return err
	}
	f.setCommitted()
	if err := os.Remove(staging); err != nil {
		fs.logger.Warn("remove staging file", "digest", f.digest, "path", staging, "error", err)
	}
	return nil
}

// commitUpload completes the upload of the verified staging file (see upload). Readers keep
// reading the staging file until the blob is in storage, then storage; the staging file is
// removed once it is.
func (fs *Fills) commitUpload(ctx context.Context, f *Fill, up *upload, staging string, size int64) error {
	if err := up.commit(ctx, size); err != nil {
		return err
	}
	f.setCommitted()
	if err := os.Remove(staging); err != nil {
		fs.logger.Warn("remove staging file", "digest", f.digest, "path", staging, "error", err)
	}
	return nil
}

// Running returns the fill of digest in progress, or nil.
func (fs *Fills) Running(digest string) *Fill {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.fills[digest]
}
