//go:build !linux

package store

import "os"

// fdatasync is fsync where fdatasync is not offered (on macOS, Go's Sync
// is F_FULLFSYNC, which also flushes the drive's cache).
func fdatasync(f *os.File) error { return f.Sync() }
