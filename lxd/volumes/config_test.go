package volumes

import (
	"net/http"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

func TestValidateConfig(t *testing.T) {
	ok := []map[string]string{
		{},
		{"size": "10GiB", "security.shared": "true", "user.note": "x"},
		{"size": "500MB"},
	}
	for _, c := range ok {
		if err := validateConfig(c); err != nil {
			t.Errorf("%v: %v", c, err)
		}
	}

	bad := []map[string]string{
		{"size": "10XB"},
		{"size": "12"},
		{"security.shared": "maybe"},
		{"volatile.x": "1"},
		{"user.big": string(make([]byte, maxValueLen+1))},
	}
	for _, c := range bad {
		err := validateConfig(c)
		if !api.StatusErrorCheck(err, http.StatusBadRequest) {
			t.Errorf("%v: want a 400, got %v", c, err)
		}
	}
}

func TestValidateName(t *testing.T) {
	for _, n := range []string{"v1", "a.b_c-d", "V"} {
		if err := ValidateName("storage volume", n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}

	for _, n := range []string{"", ".x", "a/b", "a..b", "-a", string(make([]byte, 64))} {
		if err := ValidateName("storage volume", n); err == nil {
			t.Errorf("%q accepted", n)
		}
	}
}

func TestMember(t *testing.T) {
	snaps := map[string]bool{"s1": true}
	cases := []struct{ name, tree, rel string }{
		{"backup/volume/a/b", "", "a/b"},
		{"/backup/volume/a", "", "a"},
		{"backup/volume", "", "."},
		{"backup/volume/", "", "."},
		{"backup/volume-snapshots/s1/x", "s1", "x"},
		{"backup/volume-snapshots/s1", "s1", "."},
		{"backup/volume-snapshots/s2/x", "", ""},
		{"backup/index.yaml", "", ""},
		{"elsewhere/volume/x", "", ""},
	}
	for _, c := range cases {
		tree, rel, err := member(c.name, snaps)
		if err != nil || tree != c.tree || rel != c.rel {
			t.Errorf("member(%q) = %q %q %v, want %q %q", c.name, tree, rel, err, c.tree, c.rel)
		}
	}

	for _, n := range []string{"backup/volume/../../etc/passwd", "backup/volume/a\x00b"} {
		if _, _, err := member(n, snaps); err == nil {
			t.Errorf("member(%q) accepted", n)
		}
	}
}
