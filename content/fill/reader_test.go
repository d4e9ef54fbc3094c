package fill

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"testing"
)

// TestReaderHoldsBackTheLastByteUntilVerified checks the reader's verification rule: every
// byte of the blob is written, and a reader gets all but the last one; the last one comes
// (followed by io.EOF) once the digest is verified, and never when verification fails, with or
// without an announced size. A consumer that stops at the blob's length (as a client with a
// Content-Length does) therefore never holds a complete blob that failed.
func TestReaderHoldsBackTheLastByteUntilVerified(t *testing.T) {
	data, digest := blob(11, 200_000)
	corrupt := bytes.Clone(data)
	corrupt[100_000] ^= 0xff
	n := int64(len(data))
	tests := []struct {
		name     string
		body     []byte
		size     int64
		verified bool
	}{
		{"verified", data, n, true},
		{"verified, size unknown", data, -1, true},
		{"digest mismatch", corrupt, n, false},
		{"digest mismatch, size unknown", corrupt, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t, true)
			src := newPipeSource(t, tt.size)
			f := env.fills.Start(t.Context(), digest, src.source, nil)
			whole := readAsync(t.Context(), f, 0, len(data)) // stops at the blob's length
			last := readAsync(t.Context(), f, n-1, 1)        // a range of the last byte
			unbounded := readAsync(t.Context(), f, n/2, -1)  // reads to the end
			copied := writeToAsync(t.Context(), f, n/3)      // WriteTo, as the registry streams
			src.feed(t, tt.body)                             // every byte written, the stream still open
			waitWritten(t, f, n)

			r := f.NewReader(t.Context(), 0)
			defer r.Close()
			got := make([]byte, n)
			k, err := io.ReadAtLeast(r, got, int(n-1))
			if err != nil || int64(k) != n-1 {
				t.Fatalf("before verification a reader got %d bytes, %v; want %d (all but the last)", k, err, n-1)
			}
			select {
			case res := <-whole:
				t.Fatalf("a reader of the whole blob returned before verification: %d bytes, %v", len(res.data), res.err)
			case res := <-last:
				t.Fatalf("a reader of the last byte returned before verification: %d bytes, %v", len(res.data), res.err)
			case res := <-copied:
				t.Fatalf("WriteTo returned before verification: %d bytes, %v", len(res.data), res.err)
			default:
			}

			src.pw.Close() // upstream ends: the fill verifies the digest
			rest, err := io.ReadAll(r)
			results := map[string]readResult{"whole": recv(t, whole), "last": recv(t, last), "unbounded": recv(t, unbounded),
				"copied": recv(t, copied), "first": {data: append(got[:k], rest...), err: err}}
			for name, res := range results {
				if tt.verified && res.err != nil {
					t.Errorf("%s reader: %v after %d bytes, want the blob", name, res.err, len(res.data))
				}
				if !tt.verified && !isType[*DigestMismatchError](res.err) {
					t.Errorf("%s reader: %d bytes, %v; want a *DigestMismatchError", name, len(res.data), res.err)
				}
			}
			if tt.verified && (!bytes.Equal(results["first"].data, data) || !bytes.Equal(results["whole"].data, data) ||
				!bytes.Equal(results["last"].data, data[n-1:]) || !bytes.Equal(results["unbounded"].data, data[n/2:]) ||
				!bytes.Equal(results["copied"].data, data[n/3:])) {
				t.Error("a reader got other bytes than the blob's")
			}
			waitDone(t, f)
		})
	}
}

// TestReaderOfALongerBlobNeverGetsItsEnd checks that when upstream sends more bytes than it
// announced, a reader that stops at the announced length fails instead of ending with what
// looks like the whole blob.
func TestReaderOfALongerBlobNeverGetsItsEnd(t *testing.T) {
	data, digest := blob(12, 100_000)
	env := newEnv(t, true)
	src := newPipeSource(t, int64(len(data)))
	f := env.fills.Start(t.Context(), digest, src.source, nil)
	whole := readAsync(t.Context(), f, 0, len(data))
	// The fill stops reading at the first extra byte, and the feed fails as an upstream
	// connection would.
	_, _ = src.pw.Write(append(bytes.Clone(data), 'x'))
	res := recv(t, whole)
	if !isType[*SizeMismatchError](res.err) {
		t.Fatalf("reader: %d bytes, %v; want a *SizeMismatchError", len(res.data), res.err)
	}
	waitDone(t, f)
	env.wantNothingStored(t, digest)
}

// TestReaderUnknownSizeFollowsTheFill checks that without an announced size the reader keeps
// following the fill, one byte behind what is written until the digest is verified.
func TestReaderUnknownSizeFollowsTheFill(t *testing.T) {
	data, digest := blob(13, 50_000)
	env := newEnv(t, true)
	src := newPipeSource(t, -1)
	f := env.fills.Start(t.Context(), digest, src.source, nil)
	r := f.NewReader(t.Context(), 0)
	defer r.Close()
	src.feed(t, data[:30_000])
	waitWritten(t, f, 30_000)
	got := make([]byte, len(data))
	k, err := io.ReadAtLeast(r, got, 29_999)
	if err != nil || k != 29_999 {
		t.Fatalf("read %d bytes, %v; want 29999 (one behind the fill)", k, err)
	}
	src.feed(t, data[30_000:])
	waitWritten(t, f, int64(len(data)))
	m, err := io.ReadAtLeast(r, got[k:], len(data)-1-k)
	if err != nil || k+m != len(data)-1 {
		t.Fatalf("read %d bytes in all, %v; want %d", k+m, err, len(data)-1)
	}
	src.pw.Close()
	rest, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(append(got[:k+m], rest...), data) {
		t.Fatalf("after verification: %d more bytes, %v; want the last one and io.EOF", len(rest), err)
	}
	waitDone(t, f)
	env.wantStored(t, digest, data)
}

// lockedBuffer is an io.ReaderFrom that a test reads while another goroutine writes to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) ReadFrom(r io.Reader) (int64, error) {
	return io.CopyBuffer(struct{ io.Writer }{b}, r, make([]byte, 1000))
}

// writeToAsync copies the blob from off with the reader's WriteTo into an io.ReaderFrom, in a
// goroutine.
func writeToAsync(ctx context.Context, f *Fill, off int64) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		r := f.NewReader(ctx, off)
		defer r.Close()
		var b lockedBuffer
		_, err := r.(io.WriterTo).WriteTo(&b)
		ch <- readResult{data: b.buf.Bytes(), err: err}
	}()
	return ch
}

// TestReaderWriteToSendsTheStagingFile checks WriteTo into a TCP connection (whose ReadFrom
// uses sendfile for files): the peer gets the blob as the fill writes it, and all of it once
// the digest is verified, from the staging file and, for a reader that starts after the
// commit, from storage.
func TestReaderWriteToSendsTheStagingFile(t *testing.T) {
	data, digest := blob(14, 3<<20)
	env := newEnv(t, true)
	src := newPipeSource(t, int64(len(data)))
	f := env.fills.Start(t.Context(), digest, src.source, nil)

	send := func(off int64) (<-chan readResult, <-chan error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		got := make(chan readResult, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				got <- readResult{err: err}
				return
			}
			defer c.Close()
			b, err := io.ReadAll(c)
			got <- readResult{data: b, err: err}
		}()
		sent := make(chan error, 1)
		go func() {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				sent <- err
				return
			}
			r := f.NewReader(t.Context(), off)
			defer r.Close()
			_, err = r.(io.WriterTo).WriteTo(c)
			c.Close()
			sent <- err
		}()
		return got, sent
	}
	got, sent := send(1000)
	src.feed(t, data[:len(data)/2])
	src.feed(t, data[len(data)/2:])
	src.pw.Close()
	if err := recv(t, sent); err != nil {
		t.Fatalf("WriteTo from the staging file: %v", err)
	}
	if res := recv(t, got); res.err != nil || !bytes.Equal(res.data, data[1000:]) {
		t.Fatalf("the peer got %d bytes (%v), want %d bytes of the blob", len(res.data), res.err, len(data)-1000)
	}
	waitDone(t, f)
	got, sent = send(7)
	if err := recv(t, sent); err != nil {
		t.Fatalf("WriteTo from storage: %v", err)
	}
	if res := recv(t, got); res.err != nil || !bytes.Equal(res.data, data[7:]) {
		t.Fatalf("the peer got %d bytes (%v) from storage, want %d", len(res.data), res.err, len(data)-7)
	}
}
