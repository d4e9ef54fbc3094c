// Package tmpfs mounts small tmpfs file systems for tests of a full disk: a test mounts one
// (as root; others are skipped), points what it tests at it, fills it with a filler file to
// make the disk full and removes the filler to give the space back.
package tmpfs

import (
	"errors"
	"fmt"

	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// Mount mounts a tmpfs of size MiB on a new temporary directory and unmounts it when t ends.
// It skips t when the test does not run as root, which mounting needs.
func Mount(t testing.TB, mib int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs to fill up needs root; run the test as root to check a full disk")
	}
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", mib), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("mount a tmpfs on %s: %v\n%s", dir, err, out)
	}
	t.Cleanup(func() {
		// Lazily: a process the test started may still hold files there while it stops.
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("unmount %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}

// Free returns the bytes free on the file system of dir.
func Free(t testing.TB, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// Filler is a file that takes the free space of a tmpfs.
type Filler struct {
	path string
}

// Fill writes a filler file in dir until fewer than leave bytes are free on its file system
// (none at all for leave 0), and returns it; Remove gives the space back.
func Fill(t testing.TB, dir string, leave int64) *Filler {
	t.Helper()
	f, err := os.CreateTemp(dir, "filler-*")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fl := &Filler{path: f.Name()}
	t.Cleanup(func() { _ = os.Remove(fl.path) })
	buf := make([]byte, 64<<10)
	for {
		free := Free(t, dir)
		if free <= leave {
			return fl
		}
		n := min(int64(len(buf)), free-leave)
		if _, err := f.Write(buf[:n]); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return fl
			}
			t.Fatalf("fill %s: %v", dir, err)
		}
	}
}

// Remove deletes the filler, freeing its space.
func (fl *Filler) Remove(t testing.TB) {
	t.Helper()
	if err := os.Remove(fl.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}
