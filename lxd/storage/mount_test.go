package storage

import (
	"slices"
	"testing"
)

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:               "/plain",
		`/with\040space`:       "/with space",
		`/tab\011and\134slash`: "/tab\tand\\slash",
		`/trailing\04`:         `/trailing\04`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

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
