package storage

import "os"

// writebackStep is how many written bytes a Writeback lets pile up before it starts their
// writeback.
const writebackStep = 8 << 20

// Writeback writes to a file that will be made durable (fsync) once complete, starting the
// writeback of every few MiB as they are written: the final fsync of a large blob then waits
// for the last few MiB instead of all of them, and the page cache holds fewer dirty pages.
type Writeback struct {
	f       *os.File
	off     int64 // file offset of the next write
	flushed int64 // offset up to which writeback was started
}

// NewWriteback returns a Writeback appending to f from offset off (f's current offset).
func NewWriteback(f *os.File, off int64) *Writeback { return &Writeback{f: f, off: off, flushed: off} }

func (w *Writeback) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.flushed >= writebackStep {
		startWriteback(w.f, w.flushed, w.off-w.flushed)
		w.flushed = w.off
	}
	return n, err
}
