package idmap

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestParseSubID(t *testing.T) {
	entries, err := ParseSubID([]byte("# comment\nalice:100000:65536\n\n0:200000:65536\nroot:1000000:1000000000\n"))
	if err != nil {
		t.Fatal(err)
	}

	want := []Entry{{"alice", 100000, 65536}, {"0", 200000, 65536}, {"root", 1000000, 1000000000}}
	if len(entries) != len(want) {
		t.Fatalf("got %v, want %v", entries, want)
	}

	for i := range want {
		if entries[i] != want[i] {
			t.Errorf("entry %d: got %v, want %v", i, entries[i], want[i])
		}
	}

	start, count, err := RootRange(entries)
	if err != nil || start != 1000000 || count != 1000000000 {
		t.Errorf("RootRange = %d, %d, %v; want the largest root entry", start, count, err)
	}

	for _, bad := range []string{"alice:1", "alice:x:1", "alice:1:0", ":1:1", "a:-1:5", "a:1:2:3"} {
		_, err := ParseSubID([]byte(bad + "\n"))
		if err == nil {
			t.Errorf("ParseSubID(%q) succeeded, want error", bad)
		}
	}
}

func TestRootRangeNumeric(t *testing.T) {
	start, count, err := RootRange([]Entry{{"bob", 1, 2}, {"0", 300000, 65536}})
	if err != nil || start != 300000 || count != 65536 {
		t.Errorf("RootRange = %d, %d, %v", start, count, err)
	}

	_, _, err = RootRange([]Entry{{"bob", 1, 2}})
	if !errors.Is(err, ErrNoRootRange) {
		t.Errorf("RootRange without root: err = %v, want ErrNoRootRange", err)
	}
}

func TestEnsureRootRange(t *testing.T) {
	dir := t.TempDir()
	subuid := filepath.Join(dir, "subuid")
	subgid := filepath.Join(dir, "subgid")

	// subuid already has root (numeric); subgid has another user without a trailing newline.
	writeFile(t, subuid, "alice:100000:65536\n0:500000:131072\n", 0o600)
	writeFile(t, subgid, "alice:100000:65536", 0o600)

	us, uc, gs, gc, err := EnsureRootRange(subuid, subgid)
	if err != nil {
		t.Fatal(err)
	}

	if us != 500000 || uc != 131072 {
		t.Errorf("uid range = %d+%d, want the existing 500000+131072", us, uc)
	}

	if gs != DefaultRootStart || gc != DefaultRootCount {
		t.Errorf("gid range = %d+%d, want the default", gs, gc)
	}

	if got := readFile(t, subuid); got != "alice:100000:65536\n0:500000:131072\n" {
		t.Errorf("subuid rewritten although root had a range: %q", got)
	}

	if got := readFile(t, subgid); got != "alice:100000:65536\nroot:1000000:1000000000\n" {
		t.Errorf("subgid = %q", got)
	}

	fi, err := os.Stat(subgid)
	if err != nil {
		t.Fatal(err)
	}

	if fi.Mode().Perm() != 0o644 {
		t.Errorf("subgid mode = %v, want 0644", fi.Mode().Perm())
	}

	// Second call is a no-op.
	_, _, gs2, _, err := EnsureRootRange(subuid, subgid)
	if err != nil || gs2 != gs {
		t.Errorf("second call: %d, %v", gs2, err)
	}

	if got := readFile(t, subgid); got != "alice:100000:65536\nroot:1000000:1000000000\n" {
		t.Errorf("subgid after second call = %q", got)
	}

	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestEnsureRootRangeMissingAndOverlap(t *testing.T) {
	dir := t.TempDir()
	subuid := filepath.Join(dir, "subuid") // missing: created
	subgid := filepath.Join(dir, "subgid")
	writeFile(t, subgid, "bob:1500000:65536\n", 0o644) // overlaps the default

	us, _, gs, gc, err := EnsureRootRange(subuid, subgid)
	if err != nil {
		t.Fatal(err)
	}

	if us != DefaultRootStart {
		t.Errorf("uid start = %d, want default", us)
	}

	if gs < 1500000+65536 || gs%DefaultSize != 0 || gc != DefaultRootCount {
		t.Errorf("gid range = %d+%d, want an aligned range after bob's", gs, gc)
	}
}

func TestEnsureRootRangeMalformed(t *testing.T) {
	dir := t.TempDir()
	subuid := filepath.Join(dir, "subuid")
	writeFile(t, subuid, "garbage\n", 0o644)

	_, _, _, _, err := EnsureRootRange(subuid, filepath.Join(dir, "subgid"))
	if err == nil {
		t.Fatal("malformed subuid accepted")
	}

	if got := readFile(t, subuid); got != "garbage\n" {
		t.Errorf("malformed file modified: %q", got)
	}
}

func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()

	err := os.WriteFile(path, []byte(data), mode)
	if err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	return string(data)
}
