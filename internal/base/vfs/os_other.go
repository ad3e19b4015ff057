//go:build !linux

package vfs

import (
	"io"
	"os"
)

func syncData(f *os.File) error { return f.Sync() }

func syncMany(files []*os.File) error {
	for _, f := range files {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	return nil
}

type plainLock struct{ f *os.File }

func (l plainLock) Close() error { return l.f.Close() }

// lockFile has no advisory locking off Linux; Ferry's supported platform is
// Linux, and elsewhere two processes on one data directory go undetected.
func lockFile(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return plainLock{f}, nil
}
