package storage

import (
	"slices"
	"testing"
)

func TestMountsUnderSeesRoot(t *testing.T) {
	mounts, err := mountsUnder("/")
	if err != nil {
		t.Fatal(err)
	}

	if !slices.Contains(mounts, "/") || !slices.Contains(mounts, "/proc") {
		t.Errorf("mountsUnder(/) = %v, want / and /proc among them", mounts)
	}

	mounted, err := isMountRoot("/")
	if err != nil || !mounted {
		t.Errorf("isMountRoot(/) = %v, %v", mounted, err)
	}

	mounted, err = isMountRoot("/does/not/exist")
	if err != nil || mounted {
		t.Errorf("isMountRoot(missing) = %v, %v", mounted, err)
	}
}
