//go:build !linux

package storage

// FreeSpace returns -1 where statfs is not used: the free space is not measured.
func FreeSpace(string) (int64, error) { return -1, nil }
