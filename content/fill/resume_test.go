package fill

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/content/upstream"
)

// flakyUpstream is a registry that serves one blob and misbehaves on purpose: answer(i, off)
// decides, for its i-th blob request (from 0) asking for bytes from off, what to send. It
// records the Range header of every request.
type flakyUpstream struct {
	srv      *httptest.Server
	data     []byte
	password string // when set, blob requests need Basic credentials with it (any user)

	mu     sync.Mutex
	ranges []string
}

// reply is what one request of a flakyUpstream gets.
type reply struct {
	body      []byte // bytes sent from the answer's start (the blob from start, or other bytes)
	start     int64  // the first byte announced by Content-Range; -1: answer 200 with the whole blob
	cutAfter  int    // the connection is cut after this many bytes of body (-1: send it all)
	stall     bool   // instead of cutting, stop sending and wait for the client to go away
	trickle   time.Duration
	gate      <-chan struct{} // waited for before the first byte
	announced int64           // the Content-Length; 0: len(body)
	status    int             // an error status to answer instead, with body
}

func newFlakyUpstream(t *testing.T, data []byte, answer func(i int, off int64) reply) *flakyUpstream {
	u := &flakyUpstream{data: data}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/blobs/") {
			w.WriteHeader(http.StatusOK) // the /v2/ ping
			return
		}
		if u.password != "" {
			if _, pass, ok := r.BasicAuth(); !ok || pass != u.password {
				w.Header().Set("WWW-Authenticate", `Basic realm="flaky"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
		}
		u.mu.Lock()
		i := len(u.ranges)
		u.ranges = append(u.ranges, r.Header.Get("Range"))
		u.mu.Unlock()
		var off int64
		if rg, ok := strings.CutPrefix(r.Header.Get("Range"), "bytes="); ok {
			off, _ = strconv.ParseInt(strings.TrimSuffix(rg, "-"), 10, 64)
		}
		rp := answer(i, off)
		if rp.status != 0 {
			w.WriteHeader(rp.status)
			w.Write(rp.body)
			return
		}
		n := rp.announced
		if n == 0 {
			n = int64(len(rp.body))
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		if rp.start >= 0 {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", rp.start, rp.start+n-1, len(data)))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.WriteHeader(http.StatusOK)
		}
		if rp.gate != nil {
			w.(http.Flusher).Flush()
			<-rp.gate
		}
		body := rp.body
		if rp.cutAfter >= 0 {
			body = body[:rp.cutAfter]
		}
		if rp.trickle > 0 {
			for _, b := range body {
				time.Sleep(rp.trickle)
				w.Write([]byte{b})
				w.(http.Flusher).Flush()
			}
		} else {
			w.Write(body)
		}
		w.(http.Flusher).Flush()
		switch {
		case rp.stall:
			<-r.Context().Done()
		case rp.cutAfter >= 0:
			panic(http.ErrAbortHandler) // closes the connection mid-body
		}
	}))
	u.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	u.srv.Start()
	t.Cleanup(u.srv.Close)
	return u
}

func (u *flakyUpstream) seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.ranges...)
}

// source is the Source the pull-through cache builds: the upstream client's GetBlob.
func (u *flakyUpstream) source(t *testing.T, digest string, idle time.Duration) Source {
	cl, err := upstream.New(upstream.Config{URL: u.srv.URL, Timeout: 200 * time.Millisecond, IdleTimeout: idle,
		Username: "fill", Password: u.password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return func(ctx context.Context, off int64) (io.ReadCloser, int64, error) {
		return cl.GetBlob(ctx, "library/flaky", digest, off)
	}
}

// resumeEnv is the fill engine as the content app configures it, with short backoffs.
func resumeEnv(t *testing.T, resumes int) *testEnv {
	return newEnv(t, true, WithResumes(resumes, time.Millisecond), WithRetryable(upstream.IsUnavailable))
}

// TestResumeAfterCuts checks that a fill whose upstream connection is cut mid-body, twice,
// resumes each time with a Range from the bytes it staged, and that readers that were
// waiting before the cuts (from the start, and a Range from the middle) get the exact blob.
func TestResumeAfterCuts(t *testing.T) {
	data, digest := blob(11, 1<<20)
	gate := make(chan struct{})
	const cut = 300_000
	u := newFlakyUpstream(t, data, func(i int, off int64) reply {
		rp := u0(data, off)
		if i == 0 {
			rp.gate = gate
		}
		if i < 2 {
			rp.cutAfter = cut
		}
		return rp
	})
	env := resumeEnv(t, 5)
	f := env.fills.Start(t.Context(), digest, u.source(t, digest, time.Minute), nil)
	readers := []<-chan readResult{
		readAsync(t.Context(), f, 0, -1),
		readAsync(t.Context(), f, 0, -1),
		readAsync(t.Context(), f, 700_000, 1000),    // a Range request beyond both cuts
		readAsync(t.Context(), f, 250_000, 100_000), // one across the first cut
	}
	close(gate)
	waitDone(t, f)
	if err := f.Err(); err != nil {
		t.Fatalf("fill failed: %v", err)
	}
	want := [][]byte{data, data, data[700_000:701_000], data[250_000:350_000]}
	for i, ch := range readers {
		res := recv(t, ch)
		if res.err != nil || !bytes.Equal(res.data, want[i]) {
			t.Errorf("reader %d: %d bytes, %v; want the %d bytes of the blob", i, len(res.data), res.err, len(want[i]))
		}
	}
	if got, want := u.seen(), []string{"", "bytes=300000-", "bytes=600000-"}; !equal(got, want) {
		t.Errorf("upstream saw Range headers %q, want %q", got, want)
	}
	env.wantStored(t, digest, data)
}

// u0 answers from off as a registry honouring Range does.
func u0(data []byte, off int64) reply {
	if off == 0 {
		return reply{body: data, start: -1, cutAfter: -1}
	}
	return reply{body: data[off:], start: off, cutAfter: -1}
}

func equal(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00") && len(a) == len(b)
}

// TestResumeFailures checks the upstreams a fill must not resume into a stored blob: each
// fails the fill, the waiting readers get the error (none hangs) and nothing is stored.
func TestResumeFailures(t *testing.T) {
	data, digest := blob(12, 200_000)
	other, _ := blob(13, 200_000)
	tests := []struct {
		name     string
		answer   func(i int, off int64) reply
		requests int // how many blob requests the upstream gets
		check    func(error) bool
	}{
		{"cut every time", func(i int, off int64) reply {
			rp := u0(data, off)
			rp.cutAfter = 1000
			return rp
		}, 4, func(err error) bool {
			return errors.Is(err, io.ErrUnexpectedEOF) && strings.Contains(err.Error(), "gave up after 3 resumes")
		}},
		{"206 from the wrong offset", func(i int, off int64) reply {
			if i == 0 {
				return reply{body: data, start: -1, cutAfter: 1000}
			}
			return reply{body: data[off-10:], start: off - 10, cutAfter: -1}
		}, 2, func(err error) bool { return errors.Is(err, upstream.ErrBadResponse) }},
		{"other bytes after the resume", func(i int, off int64) reply {
			if i == 0 {
				return reply{body: data, start: -1, cutAfter: 1000}
			}
			return reply{body: other[off:], start: off, cutAfter: -1}
		}, 2, isType[*DigestMismatchError]},
		{"resumed body longer than the blob", func(i int, off int64) reply {
			if i == 0 {
				return reply{body: data, start: -1, cutAfter: 1000}
			}
			return reply{body: append(bytes.Clone(data[off:]), 'x'), start: off, cutAfter: -1}
		}, 2, isType[*SizeMismatchError]},
		{"404 on resume", func(i int, off int64) reply {
			if i == 0 {
				return reply{body: data, start: -1, cutAfter: 1000}
			}
			return reply{status: http.StatusNotFound, body: []byte(`{"errors":[{"code":"BLOB_UNKNOWN","message":"gone"}]}`)}
		}, 2, upstream.IsNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gate := make(chan struct{})
			u := newFlakyUpstream(t, data, func(i int, off int64) reply {
				rp := tt.answer(i, off)
				if i == 0 {
					rp.gate = gate
				}
				return rp
			})
			env := resumeEnv(t, 3)
			f := env.fills.Start(t.Context(), digest, u.source(t, digest, time.Minute), nil)
			// A Range to the blob's end: bytes before the end may go out unverified (see Fill.readable),
			// the end never does.
			readers := []<-chan readResult{readAsync(t.Context(), f, 0, -1), readAsync(t.Context(), f, 150_000, -1)}
			close(gate)
			waitDone(t, f)
			for i, ch := range readers {
				if res := recv(t, ch); res.err == nil || !tt.check(res.err) {
					t.Errorf("reader %d: %d bytes, %v; want the fill's error", i, len(res.data), res.err)
				}
			}
			if !tt.check(f.Err()) {
				t.Errorf("fill error = %v", f.Err())
			}
			if n := len(u.seen()); n != tt.requests {
				t.Errorf("upstream got %d blob requests, want %d", n, tt.requests)
			}
			env.wantNothingStored(t, digest)
		})
	}
}

// TestResumeOthers checks the upstreams a fill resumes from although they do not simply cut:
// one that ignores Range and answers 200 with the whole blob (the upstream client skips what
// is staged; the digest, computed over the staged bytes and the rest, still decides), one
// that answers the first resume 503 (a retry can cure it: the next resume asks the same
// offset), one that stalls mid-body until the idle timeout, and one that trickles its bytes slower than
// any wall-clock budget on the whole body would allow but never idles.
func TestResumeOthers(t *testing.T) {
	data, digest := blob(14, 200_000)
	tests := []struct {
		name   string
		data   []byte
		idle   time.Duration
		answer func(i int, off int64) reply
		ranges []string
	}{
		{"200 to a Range", data, time.Minute, func(i int, off int64) reply {
			rp := reply{body: data, start: -1, cutAfter: -1}
			if i == 0 {
				rp.cutAfter = 70_000
			}
			return rp
		}, []string{"", "bytes=70000-"}},
		{"503 on the first resume", data, time.Minute, func(i int, off int64) reply {
			switch i {
			case 0:
				return reply{body: data, start: -1, cutAfter: 90_000}
			case 1:
				return reply{status: http.StatusServiceUnavailable, body: []byte(`{"errors":[{"code":"UNAVAILABLE"}]}`)}
			}
			return u0(data, off)
		}, []string{"", "bytes=90000-", "bytes=90000-"}},
		{"idle timeout", data, 200 * time.Millisecond, func(i int, off int64) reply {
			rp := u0(data, off)
			if i == 0 {
				rp.body, rp.stall = data[:50_000], true
				rp.announced = int64(len(data))
			}
			return rp
		}, []string{"", "bytes=50000-"}},
		// 20 bytes, 100 ms apart: 2 s, ten times the client's Timeout, with a 500 ms idle timeout.
		{"trickle", data[:20], 500 * time.Millisecond, func(i int, off int64) reply {
			return reply{body: data[off:20], start: -1, cutAfter: -1, trickle: 100 * time.Millisecond}
		}, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, digest := tt.data, digest
			if len(want) != len(data) {
				_, digest = blobOf(want)
			}
			u := newFlakyUpstream(t, want, tt.answer)
			env := resumeEnv(t, 3)
			f := env.fills.Start(t.Context(), digest, u.source(t, digest, tt.idle), nil)
			r := readAsync(t.Context(), f, 0, -1)
			waitDone(t, f)
			if err := f.Err(); err != nil {
				t.Fatalf("fill failed: %v", err)
			}
			if res := recv(t, r); res.err != nil || !bytes.Equal(res.data, want) {
				t.Errorf("reader: %d bytes, %v; want the %d bytes of the blob", len(res.data), res.err, len(want))
			}
			if got := u.seen(); !equal(got, tt.ranges) {
				t.Errorf("upstream saw Range headers %q, want %q", got, tt.ranges)
			}
			env.wantStored(t, digest, want)
		})
	}
}

// blobOf returns b with its digest.
func blobOf(b []byte) ([]byte, string) {
	sum := sha256.Sum256(b)
	return b, "sha256:" + hex.EncodeToString(sum[:])
}

// TestResumeLogs checks what a resume logs: the digest, the offset and the attempt, and not
// the upstream's credentials, which every request of the fill carried.
func TestResumeLogs(t *testing.T) {
	data, digest := blob(15, 100_000)
	const password = "s3cret-upstream-pass"
	u := newFlakyUpstream(t, nil, func(i int, off int64) reply {
		rp := u0(data, off)
		if i == 0 {
			rp.cutAfter = 40_000
		}
		return rp
	})
	u.data, u.password = data, password
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	env := newEnv(t, true, WithResumes(2, time.Millisecond), WithRetryable(upstream.IsUnavailable),
		func(fs *Fills) { fs.logger = logger })
	f := env.fills.Start(t.Context(), digest, u.source(t, digest, time.Minute), nil)
	waitDone(t, f)
	if err := f.Err(); err != nil {
		t.Fatalf("fill failed: %v", err)
	}
	env.wantStored(t, digest, data)
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	var resume map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "resuming blob fill" {
			resume = rec
		}
	}
	if resume == nil || resume["digest"] != digest || resume["offset"] != float64(40_000) || resume["attempt"] != float64(1) {
		t.Errorf("resume log %v; want digest %s, offset 40000, attempt 1\n%s", resume, digest, out)
	}
	if strings.Contains(out, password) || strings.Contains(out, base64.StdEncoding.EncodeToString([]byte("fill:"+password))) {
		t.Errorf("the logs hold the upstream's credentials:\n%s", out)
	}
}

// lockedWriter serializes writes to w (the fill logs from its own goroutine).
type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
