package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/pulpgo/pulpgo/content/storage"
)

// The bounds of a request to the store: how long to wait for a connection, for an answer's
// headers once the request is sent (a part is 16 MiB: its answer comes once it is stored),
// and how many times minio-go tries a request that failed for the store's sake.
const (
	dialTimeout           = 5 * time.Second
	responseHeaderTimeout = 30 * time.Second
	maxRetries            = 3
	// readIdleTimeout bounds the wait for the next bytes of an object being read: a store that
	// stops sending mid-body fails the read (503 if nothing was sent yet) instead of holding it.
	readIdleTimeout = 30 * time.Second
)

// Driver keeps objects in an S3 bucket below a prefix. See the package comment.
type Driver struct {
	client  *minio.Client
	core    minio.Core
	bucket  string
	prefix  string
	scratch string
	// readIdle is readIdleTimeout (tests shorten it).
	readIdle time.Duration
}

var (
	_ storage.Driver    = (*Driver)(nil)
	_ storage.Opener    = (*Driver)(nil)
	_ storage.Mover     = (*Driver)(nil)
	_ storage.Streamer  = (*Driver)(nil)
	_ storage.Presigner = (*Driver)(nil)
)

// New returns a Driver for cfg. It makes no request: a wrong endpoint or credentials show on
// first use (Check asks the store at once).
func New(cfg Config) (*Driver, error) {
	cfg = cfg.withEnv()
	host, secure, err := endpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	creds := credentials.NewEnvAWS()
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	transport, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("S3 client for %s: %w", cfg.Endpoint, err)
	}
	// A store that is down or hung must not hold requests for minutes: the dial and the wait
	// for an answer's headers are bounded, and so are the retries (minio-go retries 5xx and
	// network failures, 10 times by default).
	transport.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	transport.ResponseHeaderTimeout = responseHeaderTimeout
	client, err := minio.New(host, &minio.Options{Creds: creds, Secure: secure, Region: cfg.Region, BucketLookup: lookup,
		Transport: transport, MaxRetries: maxRetries})
	if err != nil {
		return nil, fmt.Errorf("S3 client for %s: %w", cfg.Endpoint, err)
	}
	if cfg.ScratchDir == "" {
		return nil, errors.New("S3 storage needs a local scratch directory")
	}
	if err := os.MkdirAll(cfg.ScratchDir, 0o700); err != nil {
		return nil, fmt.Errorf("S3 scratch directory: %w", err)
	}
	return &Driver{client: client, core: minio.Core{Client: client}, bucket: cfg.Bucket, prefix: cfg.Prefix, scratch: cfg.ScratchDir}, nil
}

// Check asks the store whether the bucket exists and the credentials may see it.
func (d *Driver) Check(ctx context.Context) error {
	ok, err := d.client.BucketExists(ctx, d.bucket)
	if err != nil {
		return fmt.Errorf("S3 bucket %s: %w", d.bucket, err)
	}
	if !ok {
		return fmt.Errorf("S3 bucket %s does not exist", d.bucket)
	}
	return nil
}

// String names the storage, for logs: s3://bucket/prefix (no credentials).
func (d *Driver) String() string { return "s3://" + path.Join(d.bucket, d.prefix) }

// key returns the object key of a driver path, or *storage.InvalidPathError.
func (d *Driver) key(p string) (string, error) {
	name, err := storage.CleanPath(p)
	if err != nil {
		return "", err
	}
	if d.prefix == "" {
		return name, nil
	}
	return d.prefix + "/" + name, nil
}

// Stat describes the object at p.
func (d *Driver) Stat(ctx context.Context, p string) (storage.FileInfo, error) {
	key, err := d.key(p)
	if err != nil {
		return storage.FileInfo{}, err
	}
	return d.stat(ctx, p, key)
}

func (d *Driver) stat(ctx context.Context, p, key string) (storage.FileInfo, error) {
	info, err := d.client.StatObject(ctx, d.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return storage.FileInfo{}, objectError(p, "stat", err)
	}
	return storage.FileInfo{Path: p, Size: info.Size, ModTime: info.LastModified}, nil
}

// Reader opens the object at p from offset with one ranged GET; an offset past the end
// returns *storage.InvalidOffsetError, and an offset at the end an immediate io.EOF.
func (d *Driver) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	key, err := d.key(p)
	if err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, &storage.InvalidOffsetError{Path: p, Offset: offset}
	}
	body, err := d.get(ctx, p, key, offset)
	if err == nil {
		return body, nil
	}
	var resp minio.ErrorResponse
	if !errors.As(err, &resp) || (resp.StatusCode != http.StatusRequestedRangeNotSatisfiable && resp.Code != "InvalidRange") {
		return nil, err
	}
	// The offset is at or past the end (or the object is empty): which one, Stat tells.
	info, serr := d.stat(ctx, p, key)
	if serr != nil {
		return nil, serr
	}
	if offset == info.Size {
		return io.NopCloser(eofReader{}), nil
	}
	return nil, &storage.InvalidOffsetError{Path: p, Offset: offset}
}

// get opens the object at key from offset.
func (d *Driver) get(ctx context.Context, p, key string, offset int64) (io.ReadCloser, error) {
	opts := minio.GetObjectOptions{}
	if offset > 0 {
		if err := opts.SetRange(offset, 0); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	body, _, _, err := d.core.GetObject(ctx, d.bucket, key, opts)
	if err != nil {
		cancel(nil)
		return nil, objectError(p, "read", err)
	}
	idle := d.readIdle
	if idle <= 0 {
		idle = readIdleTimeout
	}
	return newIdleBody(body, p, idle, cancel), nil
}

// Open opens the object at p for reading and seeking: each read after a seek is a new ranged
// GET, so serving a Range request fetches only that range.
func (d *Driver) Open(ctx context.Context, p string) (io.ReadSeekCloser, storage.FileInfo, error) {
	key, err := d.key(p)
	if err != nil {
		return nil, storage.FileInfo{}, err
	}
	info, err := d.stat(ctx, p, key)
	if err != nil {
		return nil, storage.FileInfo{}, err
	}
	return &objectReader{ctx: ctx, d: d, path: p, key: key, size: info.Size}, info, nil
}

// Writer starts a new object at p in a local scratch file; Commit uploads it.
func (d *Driver) Writer(ctx context.Context, p string) (storage.FileWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, err := d.key(p); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(d.scratch, "w-*")
	if err != nil {
		return nil, fmt.Errorf("storage: writer for %s: %w", p, err)
	}
	return &writer{d: d, path: p, f: f}, nil
}

// Delete removes the object at p.
func (d *Driver) Delete(ctx context.Context, p string) error {
	key, err := d.key(p)
	if err != nil {
		return err
	}
	// S3 deletes a missing key without complaint; the Driver contract wants to hear of it.
	if _, err := d.stat(ctx, p, key); err != nil {
		return err
	}
	if err := d.client.RemoveObject(ctx, d.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return objectError(p, "delete", err)
	}
	return nil
}

// Move uploads the local file at localPath as the object at p (in parts, never whole in
// memory) and removes localPath.
func (d *Driver) Move(ctx context.Context, localPath, p string) error {
	fi, err := os.Stat(localPath)
	if err != nil {
		return fmt.Errorf("storage: move %s to %s: %w", localPath, p, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("storage: move %s to %s: not a regular file", localPath, p)
	}
	s, err := d.Stream(ctx, localPath, p)
	if err != nil {
		return err
	}
	s.Grew(fi.Size())
	if err := s.Commit(ctx, fi.Size()); err != nil {
		_ = s.Cancel(context.WithoutCancel(ctx))
		return err
	}
	if err := os.Remove(localPath); err != nil {
		return fmt.Errorf("storage: move %s to %s: remove source: %w", localPath, p, err)
	}
	return nil
}

// PresignGet returns a presigned GET URL of the object at p, valid for expiry.
func (d *Driver) PresignGet(ctx context.Context, p string, expiry time.Duration) (string, error) {
	key, err := d.key(p)
	if err != nil {
		return "", err
	}
	u, err := d.client.PresignedGetObject(ctx, d.bucket, key, expiry, nil)
	if err != nil {
		return "", objectError(p, "presign", err)
	}
	return u.String(), nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
