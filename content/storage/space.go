package storage

// Spacer is implemented by drivers that know how many bytes they can still take (a local
// filesystem; an object store cannot tell).
type Spacer interface {
	// FreeSpace returns the bytes available to this process on the driver's filesystem.
	FreeSpace() (int64, error)
}

var _ Spacer = (*Filesystem)(nil)

// FreeSpace returns the bytes available on the filesystem of the storage's root.
func (s *Filesystem) FreeSpace() (int64, error) { return FreeSpace(s.dir) }

// CheckSpace returns an *InsufficientSpaceError when the filesystem of dir has fewer than need
// bytes free. Where the free space cannot be measured (other systems than Linux) it passes.
func CheckSpace(dir string, need int64) error {
	free, err := FreeSpace(dir)
	if err != nil || free < 0 {
		return nil // unmeasured: the writes themselves will tell
	}
	if free < need {
		return &InsufficientSpaceError{Dir: dir, Free: free, Need: need}
	}
	return nil
}
