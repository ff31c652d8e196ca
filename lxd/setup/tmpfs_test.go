package setup

import (
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

func TestTmpfsSize(t *testing.T) {
	var si unix.Sysinfo_t

	err := unix.Sysinfo(&si)
	if err != nil {
		t.Fatal(err)
	}

	ram := int64(si.Totalram) * int64(si.Unit)

	for _, c := range []struct {
		pct, limit int64
		want       string
	}{
		{50, 0, "50%"}, // no limit: the host's share
		{50, 256 << 20, strconv.FormatInt(256<<20, 10)}, // a limit below the share wins
		{20, ram, "20%"}, // a limit above the share changes nothing
	} {
		got := tmpfsSize(c.pct, c.limit)
		if got != c.want {
			t.Errorf("tmpfsSize(%d, %d) = %q, want %q", c.pct, c.limit, got, c.want)
		}
	}
}

func TestKernelView(t *testing.T) {
	for target, want := range map[string]bool{
		"/proc/meminfo":           true,
		"/sys/devices/system/cpu": true,
		"proc/uptime":             true,
		"/proc":                   true,
		"/mnt/../proc/stat":       true,
		"/procfs":                 false,
		"/dev/fuse":               false,
		"/srv/sys":                false,
	} {
		got := kernelView(Mount{Target: target})
		if got != want {
			t.Errorf("kernelView(%q) = %v, want %v", target, got, want)
		}
	}
}
