// Package atomicfile replaces files so that a reader, or the next start after a crash,
// sees either the old content or the new, never half of one: the data goes to a
// temporary file beside the target, which is renamed over it. The temporary file is made
// with mode 0600 and gets its mode before the rename: a private key is never readable by
// others, even half-written.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces path with data, mode perm. The rename is atomic but not flushed: use it
// for files rebuilt at start or that a crash may take back to their previous version.
func Write(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, false)
}

// WriteDurable is Write with the data synced before the rename, for records a crash must
// not lose once WriteDurable has returned (journals, certificates, configuration).
func WriteDurable(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, true)
}

func write(path string, data []byte, perm os.FileMode, sync bool) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}

	tmp := f.Name()
	defer func() { _ = os.Remove(tmp) }() // gone already after the rename

	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}

	if err == nil && sync {
		err = f.Sync()
	}

	cerr := f.Close()
	if err == nil {
		err = cerr
	}

	if err == nil {
		err = os.Rename(tmp, path)
	}

	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}

	return nil
}
