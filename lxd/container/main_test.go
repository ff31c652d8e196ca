package container

import (
	"os"
	"testing"
)

// TestMain lets the test binary serve as its own helper (runc's trick): the
// monitor and the __init child are this binary re-executed.
func TestMain(m *testing.M) {
	if IsHelper(os.Args) {
		os.Exit(HelperMain(os.Args))
	}

	os.Exit(m.Run())
}
