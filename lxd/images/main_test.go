package images

import (
	"os"
	"testing"
)

// TestMain lets the test binary serve as the squashfs helper, as berthd does.
func TestMain(m *testing.M) {
	if IsSquashfsHelper(os.Args) {
		os.Exit(SquashfsHelperMain())
	}

	os.Exit(m.Run())
}
