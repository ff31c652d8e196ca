// Package integration boots real containers through a real berthd: real namespaces,
// cgroups, mounts and SQLite. It needs root; with CI or BERTH_TEST_STRICT set, a missing
// capability fails the run instead of skipping it.
package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/imagebuild"
	"github.com/berth-dev/berth/test/testutil"
)

// Paths shared by every test of the run, set up once in TestMain.
var (
	berthdBin string // freshly built daemon
	berthBin  string // freshly built CLI
	imagePath string // cached test image tarball
	setupErr  error
)

const imageCache = "/var/cache/berth/images"

// requireSetup skips (or fails, in strict mode) when the run cannot boot containers here.
func requireSetup(t *testing.T) {
	t.Helper()
	if setupErr != nil {
		testutil.SkipOrFail(t, "integration setup: %v", setupErr)
	}
}

func TestMain(m *testing.M) {
	setupErr = setup()
	lxcfsBefore := testutil.LxcfsPid()
	code := m.Run()
	testutil.StopLxcfsStartedSince(lxcfsBefore)
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}

	os.Exit(code)
}

var binDir string

func setup() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root to create user namespaces, cgroups and mounts")
	}

	var err error
	binDir, err = os.MkdirTemp("", "berth-bin-")
	if err != nil {
		return err
	}

	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	berthdBin = filepath.Join(binDir, "berthd")
	berthBin = filepath.Join(binDir, "berth")
	// berth-init first: berthd embeds it (lxd/container/initbin), as make build does.
	for _, b := range []struct {
		bin, pkg string
		flags    []string
	}{
		{filepath.Join(root, "lxd", "container", "initbin", "berth-init"), "./lxd/berth-init", []string{"-ldflags=-s -extldflags=-static"}},
		{berthdBin, "./lxd", nil},
		{berthBin, "./client/berth", nil},
	} {
		cmd := exec.Command("go", append(append([]string{"build"}, b.flags...), "-o", b.bin, b.pkg)...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("building %s: %v\n%s", b.pkg, err, out)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	imagePath, err = imagebuild.CachedBuild(ctx, "debian/12", imageCache, nil)
	if err != nil {
		return fmt.Errorf("building test image: %w", err)
	}

	fmt.Printf("test image %s ready in %s\n", filepath.Base(imagePath), time.Since(start).Round(time.Millisecond))
	return nil
}
