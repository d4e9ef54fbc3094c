package content

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

// instanceStaging gives this process its own fill staging directory below root, marked live by
// an exclusive flock on <dir>.lock held for the process's life, and removes the directories of
// processes that are gone (their lock is free; a crash releases it). Content processes that
// share a storage directory therefore never sweep each other's fills in progress.
func instanceStaging(root string) (dir string, release func(), err error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", nil, fmt.Errorf("create fill staging root %s: %w", root, err)
	}
	if err := sweepDeadInstances(root); err != nil {
		return "", nil, err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	lock, err := os.OpenFile(filepath.Join(root, id+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", nil, fmt.Errorf("create fill staging lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return "", nil, fmt.Errorf("lock fill staging dir: %w", err)
	}
	dir = filepath.Join(root, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		lock.Close()
		return "", nil, fmt.Errorf("create fill staging dir: %w", err)
	}
	return dir, func() {
		_ = os.RemoveAll(dir)
		_ = os.Remove(lock.Name())
		_ = lock.Close()
	}, nil
}

// sweepDeadInstances removes what dead processes left below root: directories whose lock no
// process holds, and stray files of older layouts.
func sweepDeadInstances(root string) error {
	entries, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("read fill staging root %s: %w", root, err)
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
	return errors.Join(errs...)
}

func removeMissing(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
