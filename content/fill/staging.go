package fill

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// stagingFilePattern names the staging files of fills.
const stagingFilePattern = "fill-*.part"

// Staging is this process's staging directory: where its fills write blobs until they are
// verified and committed to storage. It lives below a staging root shared by the content
// processes of one storage (put the root on the storage's filesystem, so that a commit is a
// rename), and is marked live by an exclusive flock on <dir>.lock, held until Close. Opening
// one removes the directories of processes that are gone (their lock is free: a crash releases
// it), so processes never sweep each other's fills in progress and a crash leaves nothing
// behind for long.
type Staging struct {
	dir  string
	lock *os.File
}

// OpenStaging creates a staging directory of this process below root (created if needed),
// after removing what dead processes left there.
func OpenStaging(root string) (*Staging, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("create staging root %s: %w", root, err)
	}
	if err := sweepDeadStaging(root); err != nil {
		return nil, err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	dir := filepath.Join(root, hex.EncodeToString(b[:]))
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create staging lock %s.lock: %w", dir, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("lock staging directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		lock.Close()
		return nil, fmt.Errorf("create staging directory %s: %w", dir, err)
	}
	return &Staging{dir: dir, lock: lock}, nil
}

// Dir returns the path of the staging directory.
func (s *Staging) Dir() string { return s.dir }

// Close removes the staging directory, with whatever it holds, and releases its lock. Call it
// once the fills have ended (Fills.Wait).
func (s *Staging) Close() error {
	err := errors.Join(removeMissing(os.RemoveAll(s.dir)), removeMissing(os.Remove(s.lock.Name())))
	if cerr := s.lock.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return fmt.Errorf("close staging directory %s: %w", s.dir, err)
	}
	return nil
}

// createFile creates a staging file for one fill, with a name of its own; the directory is
// created again if something removed it.
func (s *Staging) createFile() (*os.File, error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, err
	}
	return os.CreateTemp(s.dir, stagingFilePattern)
}

// sweepDeadStaging removes what dead processes left below root: directories whose lock no
// process holds, and stray files of older layouts.
func sweepDeadStaging(root string) error {
	entries, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("read staging root %s: %w", root, err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".lock") {
			continue
		}
		p := filepath.Join(root, name)
		if !e.IsDir() {
			errs = append(errs, removeMissing(os.Remove(p)))
			continue
		}
		lockPath := p + ".lock"
		lock, err := os.OpenFile(lockPath, os.O_RDWR, 0)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		if lock != nil {
			if syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
				lock.Close() // a live process holds it
				continue
			}
		}
		errs = append(errs, removeMissing(os.RemoveAll(p)))
		if lock != nil {
			errs = append(errs, removeMissing(os.Remove(lockPath)))
			lock.Close()
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sweep staging root %s: %w", root, err)
	}
	return nil
}

func removeMissing(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
