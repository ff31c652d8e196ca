package pools

import (
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

func TestValidateName(t *testing.T) {
	for _, n := range []string{"default", "p1", "a.b-c_d", strings.Repeat("x", 63)} {
		if err := ValidateName(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}

	for _, n := range []string{"", ".", "..", "-x", ".hidden", "a/b", "a..b", "a b", strings.Repeat("x", 64), "p\x00"} {
		err := ValidateName(n)
		if !api.StatusErrorCheck(err, http.StatusBadRequest) {
			t.Errorf("%q: got %v, want a 400", n, err)
		}
	}
}

func TestValidateConfig(t *testing.T) {
	for _, tc := range []struct {
		driver string
		config map[string]string
		want   string // "" valid, else a part of the message
	}{
		{"dir", nil, ""},
		{"dir", map[string]string{"source": "/srv/pool", "user.x": "y"}, ""},
		{"btrfs", map[string]string{"size": "10GiB", "btrfs.mount_options": "compress=zstd,noatime"}, ""},
		{"zfs", nil, `unknown storage driver "zfs"`},
		{"", nil, "unknown storage driver"},
		{"dir", map[string]string{"size": "1GiB"}, `config key "size" is not valid for dir pools`},
		{"dir", map[string]string{"source": "rel/path"}, "not a clean absolute path"},
		{"dir", map[string]string{"source": "/srv/../etc"}, "not a clean absolute path"},
		{"btrfs", map[string]string{"size": "lots"}, `invalid size "lots"`},
		{"btrfs", map[string]string{"size": "-5GiB"}, "invalid size"},
		{"btrfs", map[string]string{"size": "1MiB"}, "out of range"},
		{"btrfs", map[string]string{"size": "100PiB"}, "invalid size"},
		{"btrfs", map[string]string{"size": "1000TiB"}, "out of range"},
		{"btrfs", map[string]string{"btrfs.mount_options": "subvol=/other"}, `mount option "subvol=/other" is not allowed`},
		{"overlay", map[string]string{"user.big": strings.Repeat("x", maxValueLen+1)}, "longer than"},
	} {
		err := ValidateConfig(tc.driver, tc.config)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s %v: %v", tc.driver, tc.config, err)
			}

			continue
		}

		if !api.StatusErrorCheck(err, http.StatusBadRequest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: got %v, want a 400 with %q", tc.driver, tc.config, err, tc.want)
		}
	}
}

func TestValidateUpdate(t *testing.T) {
	cur := map[string]string{"source": "/d/p.img", "size": "5GiB"}
	ok := map[string]string{"source": "/d/p.img", "size": "5GiB", "user.note": "x"}
	if err := ValidateUpdate("btrfs", cur, ok); err != nil {
		t.Fatal(err)
	}

	for _, next := range []map[string]string{
		{"source": "/d/other.img", "size": "5GiB"},
		{"source": "/d/p.img", "size": "6GiB"},
		{"source": "/d/p.img"},
		{"source": "/d/p.img", "size": "5GiB", "btrfs.mount_options": "noatime"},
	} {
		err := ValidateUpdate("btrfs", cur, next)
		if !api.StatusErrorCheck(err, http.StatusBadRequest) || !strings.Contains(err.Error(), "cannot be changed") {
			t.Errorf("%v: got %v, want a 400 naming the fixed key", next, err)
		}
	}
}

func TestLoopSizeDefault(t *testing.T) {
	n, err := loopSize("")
	if err != nil || n != 5<<30 {
		t.Fatalf("default loop size %d, %v", n, err)
	}
}
