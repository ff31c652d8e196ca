package fakeapi

import "os"

// makeShortTempDir returns a temp dir whose path is short enough for a
// unix socket name.
func makeShortTempDir() (string, error) {
	return os.MkdirTemp("/tmp", "berthfake")
}

func removeAll(dir string) { _ = os.RemoveAll(dir) }
