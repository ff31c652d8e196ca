package container

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/sys"
)

// fakeDaemonEnv makes the test binary act as a daemon that starts the
// container in the JSON spec and exits, leaving the monitor behind.
const fakeDaemonEnv = "BERTH_TEST_FAKE_DAEMON"

func fakeDaemon(specJSON string) int {
	var spec Spec

	err := json.Unmarshal([]byte(specJSON), &spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	exe, f, err := sys.SealedSelfExe()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	defer func() { _ = f.Close() }()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	m, err := Start(ctx, exe, spec, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	_ = m.Close()

	return 0
}

// TestMain lets the test binary serve as its own helper (runc's trick): the
// monitor and the __init child are this binary re-executed.
func TestMain(m *testing.M) {
	// The init code this test binary was built with, not an embedded berth-init an
	// earlier build left (the integration tests run that one).
	initFromEmbedded = false

	if IsHelper(os.Args) {
		os.Exit(HelperMain(os.Args))
	}

	if spec := os.Getenv(fakeDaemonEnv); spec != "" {
		os.Exit(fakeDaemon(spec))
	}

	os.Exit(m.Run())
}
