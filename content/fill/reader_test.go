package fill

import (
	"bytes"
	"io"
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
			default:
			}

			src.pw.Close() // upstream ends: the fill verifies the digest
			rest, err := io.ReadAll(r)
			results := map[string]readResult{"whole": recv(t, whole), "last": recv(t, last), "unbounded": recv(t, unbounded),
				"first": {data: append(got[:k], rest...), err: err}}
			for name, res := range results {
				if tt.verified && res.err != nil {
					t.Errorf("%s reader: %v after %d bytes, want the blob", name, res.err, len(res.data))
				}
				if !tt.verified && !isType[*DigestMismatchError](res.err) {
					t.Errorf("%s reader: %d bytes, %v; want a *DigestMismatchError", name, len(res.data), res.err)
				}
			}
			if tt.verified && (!bytes.Equal(results["first"].data, data) || !bytes.Equal(results["whole"].data, data) ||
				!bytes.Equal(results["last"].data, data[n-1:]) || !bytes.Equal(results["unbounded"].data, data[n/2:])) {
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
