package fill

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/pulpgo/pulpgo/content/storage"
)

// Source opens the upstream bytes of one object; the caller wraps its upstream client's blob
// fetch in one. size is -1 when upstream does not announce it. A fill calls its Source at most
// once, on the fill's own context.
type Source func(ctx context.Context) (body io.ReadCloser, size int64, err error)

// CommitFunc is called once the blob is in storage, with its size, so the caller can record it
// (for example in the database). It runs on the fill's detached context.
type CommitFunc func(ctx context.Context, size int64) error

// DefaultTimeout bounds one fill, from the upstream request to the commit.
const DefaultTimeout = time.Hour

// bufferSize is the size of the one buffer a fill copies upstream bytes through.
const bufferSize = 64 << 10

// Option configures Fills.
type Option func(*Fills)

// WithTimeout bounds each fill to d instead of DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(fs *Fills) { fs.timeout = d }
}

// WithLocker makes fills take l's lock on their digest before fetching, so that content
// processes sharing one storage fetch each blob once. The default is NoLocker.
func WithLocker(l Locker) Option {
	return func(fs *Fills) { fs.locker = l }
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

	mu    sync.Mutex
	fills map[string]*Fill // running fills by digest; also guards each Fill's hooks
	wg    sync.WaitGroup
}

// New returns Fills that commit to driver and write staging files in staging. When staging is
// on the same filesystem as a driver implementing storage.Mover, a commit is a rename. A nil
// logger discards.
func New(driver storage.Driver, staging *Staging, logger *slog.Logger, opts ...Option) *Fills {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	fs := &Fills{
		driver:  driver,
		staging: staging,
		logger:  logger,
		timeout: DefaultTimeout,
		locker:  NoLocker{},
		fills:   make(map[string]*Fill),
	}
	for _, opt := range opts {
		opt(fs)
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

	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fs.timeout)
	go func() {
		defer fs.wg.Done()
		defer cancel()
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
	if err := fs.fill(ctx, f, src); err != nil {
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
		f.setStored(info.Size)
		return nil
	}
	var notFound *storage.PathNotFoundError
	if !errors.As(err, &notFound) {
		return fmt.Errorf("stat blob %s: %w", f.digest, err)
	}

	fs.logger.Debug("fetching blob from upstream", "digest", f.digest)
	body, size, err := src(ctx)
	if err != nil {
		return fmt.Errorf("fetch blob %s: %w", f.digest, err)
	}
	defer body.Close()
	// Unblock a read stuck on an upstream that ignores the context once the fill times out.
	stop := context.AfterFunc(ctx, func() { _ = body.Close() })
	defer stop()
	f.setSize(size)

	file, err := fs.staging.createFile()
	if err != nil {
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

	total, sum, err := copyHashing(ctx, f, file, body, size, storage.NewHash(algorithm))
	if err != nil {
		return err
	}
	if size >= 0 && total != size {
		return &SizeMismatchError{Digest: f.digest, Want: size, Got: total}
	}
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

// copyHashing copies body to file through one bounded buffer, hashing it and publishing the
// progress to f's readers after each write. With a known size it stops one byte past it.
func copyHashing(ctx context.Context, f *Fill, file *os.File, body io.Reader, size int64, h hash.Hash) (int64, []byte, error) {
	if size >= 0 {
		body = io.LimitReader(body, size+1)
	}
	buf := make([]byte, bufferSize)
	out := storage.NewWriteback(file, 0)
	var total int64
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if size >= 0 && total+int64(n) > size {
				return 0, nil, &SizeMismatchError{Digest: f.digest, Want: size, Got: total + int64(n)}
			}
			if _, err := out.Write(buf[:n]); err != nil {
				return 0, nil, fmt.Errorf("stage blob %s: %w", f.digest, err)
			}
			h.Write(buf[:n])
			total += int64(n)
			f.setWritten(total)
		}
		if rerr == io.EOF {
			return total, h.Sum(nil), nil
		}
		if rerr != nil {
			if cerr := ctx.Err(); cerr != nil {
				rerr = cerr
			}
			return 0, nil, fmt.Errorf("read blob %s from upstream: %w", f.digest, rerr)
		}
	}
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
