package volumes

import (
	"net/http"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

// A name a request or a disk device brings is keyed in its owner's project only: a name
// spelling another project's key ("b@vol") or leaving its directory is refused.
func TestKeyOf(t *testing.T) {
	good := map[[2]string]string{
		{"default", "vol"}:    "vol",
		{"default", "a_vol"}:  "a_vol",
		{"a", "vol"}:          "vol@a",
		{"a", "vol/snap0"}:    "vol@a/snap0",
		{"default", "vol/s1"}: "vol/s1",
	}

	for in, want := range good {
		got, err := KeyOf(in[0], in[1])
		if err != nil || got != want {
			t.Errorf("KeyOf(%q, %q) = %q, %v; want %q", in[0], in[1], got, err, want)
		}
	}

	for _, name := range []string{"vol@b", "vol@default", "..", "vol/..", "", "vol/s@x", "a/b/c"} {
		_, err := KeyOf("a", name)
		if !api.StatusErrorCheck(err, http.StatusBadRequest) {
			t.Errorf("KeyOf(a, %q) = %v, want a 400", name, err)
		}
	}
}

// A disk's source is a volume of its instance's project's owner: never another project's
// by an '@' in the source, none for a project that may use no volumes.
func TestDiskKey(t *testing.T) {
	owners := map[string]string{"default": "default", "a": "a", "shared": "default", "locked": ""}
	cases := []struct {
		proj, source string
		want         string
		ok           bool
	}{
		{"a", "vol", "vol@a", true},
		{"shared", "vol", "vol", true},
		{"default", "vol", "vol", true},
		{"shared", "vol@a", "", false},
		{"default", "vol@a", "", false},
		{"locked", "vol", "", false},
		{"unknown", "vol", "", false},
		{"a", "vol/snap", "", false},
	}

	for _, c := range cases {
		k, ok := diskKey(owners, c.proj, "p", c.source)
		if ok != c.ok || (ok && (k.name != c.want || k.pool != "p")) {
			t.Errorf("diskKey(%s, %s) = %+v, %v; want %q, %v", c.proj, c.source, k, ok, c.want, c.ok)
		}
	}
}
