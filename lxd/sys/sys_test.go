package sys

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/test/testutil"
)

func TestParseKernelRelease(t *testing.T) {
	cases := map[string]KernelVersion{
		"6.18.44-fc-v857":  {Major: 6, Minor: 18, Patch: 44},
		"5.10.0-28-amd64":  {Major: 5, Minor: 10},
		"6.1":              {Major: 6, Minor: 1},
		"4.19.0+":          {Major: 4, Minor: 19},
		"6.8.0-generic.x1": {Major: 6, Minor: 8},
	}

	for rel, want := range cases {
		got, err := parseKernelRelease(rel)
		if err != nil {
			t.Fatalf("parseKernelRelease(%q): %v", rel, err)
		}

		if got.Major != want.Major || got.Minor != want.Minor {
			t.Errorf("parseKernelRelease(%q) = %d.%d, want %d.%d", rel, got.Major, got.Minor, want.Major, want.Minor)
		}
	}

	k, _ := parseKernelRelease("6.18.44-fc")
	if k.Patch != 44 || !k.AtLeast(6, 18) || k.AtLeast(6, 19) || !k.AtLeast(5, 99) {
		t.Errorf("unexpected version logic for %+v", k)
	}

	_, err := parseKernelRelease("garbage")
	if err == nil {
		t.Error("parseKernelRelease(garbage) succeeded")
	}
}

func TestKernel(t *testing.T) {
	k, err := Kernel()
	if err != nil {
		t.Fatal(err)
	}

	if k.Major < 3 {
		t.Errorf("implausible kernel %+v", k)
	}
}

func TestCgroupLayout(t *testing.T) {
	mode, unified, err := CgroupLayout()
	if err != nil {
		testutil.SkipOrFail(t, "no cgroup hierarchy here: %v", err)
	}

	switch mode {
	case CgroupLegacy, CgroupHybrid, CgroupUnified:
	default:
		t.Fatalf("CgroupLayout returned mode %v", mode)
	}

	if mode != CgroupLegacy && unified == "" {
		t.Fatalf("mode %s without a unified mount point", mode)
	}

	t.Logf("cgroup mode %s, unified at %q", mode, unified)

	if mode != CgroupLegacy {
		var st unix.Statfs_t

		err = unix.Statfs(unified, &st)
		if err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
			t.Fatalf("unified path %q is not cgroup2 (err %v)", unified, err)
		}
	}
}

func TestSealedSelfExe(t *testing.T) {
	path, f, err := SealedSelfExe()
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = f.Close() }()

	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil {
		t.Fatal(err)
	}

	want := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if seals&want != want {
		t.Errorf("seals = %#x, want %#x set", seals, want)
	}

	_, err = f.Write([]byte("x"))
	if err == nil {
		t.Error("writing to the sealed copy succeeded")
	}

	orig, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}

	copied, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	if !bytes.Equal(orig, copied) {
		t.Fatal("sealed copy differs from /proc/self/exe")
	}

	// The copy is executable: run the test binary from it, asking for no tests.
	out, err := exec.Command(path, "-test.run", "^$").CombinedOutput()
	if err != nil {
		t.Fatalf("executing sealed copy: %v: %s", err, out)
	}
}

// TestSealedSelfExeNotInherited: a child started from the sealed copy does not hold it.
func TestSealedSelfExeNotInherited(t *testing.T) {
	path, f, err := SealedSelfExe()
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = f.Close() }()

	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Fatalf("sealed copy's fd is not close-on-exec (flags %#x, %v)", flags, err)
	}

	if f.Fd() < minExeFD {
		t.Errorf("sealed copy at fd %d, below %d", f.Fd(), minExeFD)
	}

	// ls runs as a child of a shell started from /bin/sh: it lists what it inherited.
	out, err := exec.Command("/bin/sh", "-c", "ls -l /proc/self/fd/").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}

	if bytes.Contains(out, []byte("memfd:berthd")) {
		t.Errorf("a child inherited the sealed copy:\n%s", out)
	}

	// The path still executes with the fd close-on-exec.
	out, err = exec.Command(path, "-test.run", "^$").CombinedOutput()
	if err != nil {
		t.Fatalf("executing sealed copy: %v: %s", err, out)
	}
}

// SealedCopy from a file copies what io.Copy would: from the file's position to its end
// (it uses sendfile from a file).
func TestSealedCopyFromFilePosition(t *testing.T) {
	src, err := os.CreateTemp(t.TempDir(), "src")
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = src.Close() }()

	data := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640 kB
	_, err = src.Write(data)
	if err == nil {
		_, err = src.Seek(100, io.SeekStart)
	}

	if err != nil {
		t.Fatal(err)
	}

	path, f, err := SealedCopy("poscopy", src)
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = f.Close() }()

	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	if !bytes.Equal(got, data[100:]) {
		t.Fatalf("copied %d bytes, want the %d after the position", len(got), len(data)-100)
	}
}
