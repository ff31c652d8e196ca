package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesWholeAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for i, w := range []func(string, []byte, os.FileMode) error{Write, WriteDurable} {
		err := w(p, []byte{byte('a' + i)}, 0o640)
		if err != nil {
			t.Fatal(err)
		}

		b, err := os.ReadFile(p)
		st, _ := os.Stat(p)
		if err != nil || string(b) != string(rune('a'+i)) || st.Mode().Perm() != 0o640 {
			t.Errorf("after write %d: %q %v, mode %v", i, b, err, st.Mode())
		}
	}

	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}

	// A directory in the way: an error naming the path, nothing left behind.
	err := Write(filepath.Join(dir, "missing", "f"), nil, 0o600)
	if err == nil {
		t.Error("write into a missing directory succeeded")
	}

	entries, _ = os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("failed write left files: %v", entries)
	}
}
