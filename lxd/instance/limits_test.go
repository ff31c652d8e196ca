package instance

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/lxd/sys"
)

func TestParseAllowance(t *testing.T) {
	for _, c := range []struct {
		in            string
		ncpu          int
		quota, period int64
		bad           bool
	}{
		{"50%", 1, 50000, 100000, false},
		{"50%", 2, 100000, 100000, false},
		{"25ms/100ms", 4, 25000, 100000, false},
		{"0%", 1, 0, 0, true},
		{"150%", 1, 0, 0, true},
		{"25ms/2000ms", 1, 0, 0, true},
		{"fast", 1, 0, 0, true},
	} {
		q, p, err := parseAllowance(c.in, c.ncpu)
		if (err != nil) != c.bad || (!c.bad && (q != c.quota || p != c.period)) {
			t.Errorf("parseAllowance(%q, %d) = %d, %d, %v", c.in, c.ncpu, q, p, err)
		}
	}
}

func TestFormatCPUs(t *testing.T) {
	if got := formatCPUs([]int{0, 1, 3}); got != "0,1,3" {
		t.Fatalf("formatCPUs = %q", got)
	}
}

func TestMemoryBytes(t *testing.T) {
	n, err := memoryBytes("128MiB")
	if err != nil || n != 128<<20 {
		t.Fatalf("128MiB = %d, %v", n, err)
	}

	total, err := sys.MemTotal()
	if err != nil {
		t.Fatal(err)
	}

	n, err = memoryBytes("50%")
	if err != nil || n != total/2 {
		t.Fatalf("50%% = %d, %v (host %d)", n, err, total)
	}

	for _, bad := range []string{"0%", "101%", "lots", "-5MiB"} {
		_, err := memoryBytes(bad)
		if err == nil {
			t.Errorf("memoryBytes(%q) accepted", bad)
		}
	}
}

func TestValidateKeysAndDevices(t *testing.T) {
	for k, v := range map[string]string{
		"raw.idmap":            "both 1000 1000",
		"limits.cpu.allowance": "lots",
		"limits.memry":         "1GiB",
	} {
		err := ValidateConfig(map[string]string{k: v})
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}

	err := ValidateConfig(map[string]string{"raw.idmap": "uid 1000"})
	if err == nil || !strings.Contains(err.Error(), "not an id map entry") {
		t.Errorf("bad raw.idmap syntax: %v", err)
	}

	for _, dev := range []map[string]string{
		{"type": "disk", "source": "relative", "path": "/x"},
		{"type": "disk", "source": "/tmp", "path": "/"},
		{"type": "disk", "source": "/tmp", "path": "/x", "readonly": "perhaps"},
		{"type": "proxy", "listen": "tcp:0.0.0.0:80", "connect": "udp:127.0.0.1:80"},
		{"type": "proxy", "listen": "tcp:0.0.0.0:80-90", "connect": "tcp:127.0.0.1:80"},
		{"type": "unix-char", "path": "/dev/x", "mode": "999"},
	} {
		err := ValidateDevices(map[string]map[string]string{"d": dev})
		if err == nil {
			t.Errorf("device %v accepted", dev)
		}
	}

	err = ValidateDevices(map[string]map[string]string{
		"root": {"type": "disk", "path": "/", "pool": "default"},
		"data": {"type": "disk", "source": "/srv", "path": "/srv", "readonly": "true"},
		"web":  {"type": "proxy", "listen": "tcp:0.0.0.0:8080", "connect": "tcp:127.0.0.1:80"},
		"fuse": {"type": "unix-char", "source": "/dev/fuse"},
	})
	if err != nil {
		t.Fatal(err)
	}
}
