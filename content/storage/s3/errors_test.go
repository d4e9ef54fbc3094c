package s3_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/content/storage/s3"
)

// unavailable is what models.IsUnavailable looks for in the errors of other packages.
func unavailable(err error) bool {
	var u interface{ Unavailable() bool }
	return errors.As(err, &u) && u.Unavailable()
}

// TestStoreFailuresAreUnavailable points the driver at stores that fail: 5xx answers (what a
// store with a full disk or a broken backend gives), a store that refuses connections, and
// one that refuses the request (403, which is not the store's failure). Every operation's
// error says Unavailable for the first two, not for the third, and a 404 stays a miss.
func TestStoreFailuresAreUnavailable(t *testing.T) {
	answer := func(status int, code string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(status)
			if r.Method != http.MethodHead {
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>test</Message></Error>`, code)
			}
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()

	for _, tt := range []struct {
		name, endpoint string
		want           bool
	}{
		{"500 InternalError", answer(http.StatusInternalServerError, "InternalError").URL, true},
		{"503 SlowDown", answer(http.StatusServiceUnavailable, "SlowDown").URL, true},
		{"507 full", answer(http.StatusInsufficientStorage, "XMinioStorageFull").URL, true},
		{"connection refused", refused, true},
		{"403 AccessDenied", answer(http.StatusForbidden, "AccessDenied").URL, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := s3.New(s3.Config{Bucket: "bucket", Endpoint: tt.endpoint, AccessKey: "k", SecretKey: "s",
				PathStyle: true, Region: "us-east-1", ScratchDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			local := filepath.Join(t.TempDir(), "local")
			if err := os.WriteFile(local, []byte("bytes"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, statErr := d.Stat(ctx, "blobs/x")
			_, readErr := d.Reader(ctx, "blobs/x", 0)
			_, _, openErr := d.Open(ctx, "blobs/x")
			moveErr := d.Move(ctx, local, "blobs/x")
			w, err := d.Writer(ctx, "blobs/y")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = w.Write([]byte("bytes"))
			commitErr := w.Commit(ctx)
			for op, err := range map[string]error{"stat": statErr, "read": readErr, "open": openErr, "move": moveErr, "commit": commitErr} {
				if err == nil {
					t.Errorf("%s succeeded", op)
					continue
				}
				if got := unavailable(err); got != tt.want {
					t.Errorf("%s: %v: Unavailable = %v, want %v", op, err, got, tt.want)
				}
			}
		})
	}

	t.Run("404 is a miss", func(t *testing.T) {
		d, err := s3.New(s3.Config{Bucket: "bucket", Endpoint: answer(http.StatusNotFound, "NoSuchKey").URL, AccessKey: "k", SecretKey: "s",
			PathStyle: true, Region: "us-east-1", ScratchDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		var nf *storage.PathNotFoundError
		if _, err := d.Stat(t.Context(), "blobs/x"); !errors.As(err, &nf) || unavailable(err) {
			t.Errorf("Stat = %v, want *storage.PathNotFoundError", err)
		}
	})
}

// TestStalledReadIsUnavailable: a store that sends an object's headers and first bytes, then
// nothing, fails the read after the idle timeout with an unavailable error (the request would
// otherwise wait as long as the client does).
func TestStalledReadIsUnavailable(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`)
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(make([]byte, 10))
		w.(http.Flusher).Flush()
		select { // stalls
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	d, err := s3.New(s3.Config{Bucket: "bucket", Endpoint: srv.URL, AccessKey: "k", SecretKey: "s",
		PathStyle: true, Region: "us-east-1", ScratchDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s3.SetReadIdle(d, 200*time.Millisecond)
	body, err := d.Reader(t.Context(), "blobs/x", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(body)
		done <- err
	}()
	select {
	case err := <-done:
		var ue *storage.UnavailableError
		if !errors.As(err, &ue) {
			t.Errorf("read of a stalled object: %v, want *storage.UnavailableError", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the read of a stalled object hung")
	}
}
