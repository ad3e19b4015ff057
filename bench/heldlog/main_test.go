package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDirSizeCountsRegularFilesBelowTheDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	for path, n := range map[string]int{"top": 10, "a/one": 200, "a/b/two": 3000} {
		if err := os.WriteFile(filepath.Join(dir, path), make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "a", "b", "two"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	got, err := dirSize(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got != 3210 {
		t.Errorf("dirSize = %d, want 3210 (three files, the symlink not counted)", got)
	}
}

func TestDirSizeOfAMissingDirectoryIsZero(t *testing.T) {
	got, err := dirSize(filepath.Join(t.TempDir(), "absent"))
	if err != nil || got != 0 {
		t.Errorf("dirSize = %d, %v; want 0, nil", got, err)
	}
}
