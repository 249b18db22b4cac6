package store

import (
	"os"
	"syscall"
)

// fdatasync flushes a file's data (and the size, when it grew) without
// its other metadata, like SQLite's own syncs on Linux.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
