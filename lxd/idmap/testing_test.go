package idmap

import (
	"os"
	"testing"
)

// requireRoot skips without root unless CI or BERTH_TEST_STRICT demands the test runs.
func requireRoot(t testing.TB) {
	t.Helper()

	if os.Geteuid() == 0 {
		return
	}

	if os.Getenv("CI") != "" || os.Getenv("BERTH_TEST_STRICT") != "" {
		t.Fatal("needs root (CI/BERTH_TEST_STRICT set)")
	}

	t.Skip("needs root to create user namespaces and chown")
}
