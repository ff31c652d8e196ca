package instance

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
)

func TestValidateConfig(t *testing.T) {
	good := map[string]string{
		"limits.memory":              "512MiB",
		"limits.cpu":                 "0-1,3",
		"limits.cpu.allowance":       "25ms/100ms",
		"limits.processes":           "500",
		"boot.autostart":             "true",
		"boot.autostart.priority":    "-10",
		"boot.autostart.delay":       "86400", // LXD's: any integer; bounded where used
		"boot.host_shutdown_timeout": "-1",
		"environment.FOO":            "bar baz",
		"user.note":                  "anything\ngoes",
		"image.os":                   "debian",
		"volatile.base_image":        "abc",
	}

	err := ValidateConfig(good)
	if err != nil {
		t.Fatalf("valid config refused: %v", err)
	}

	bad := []map[string]string{
		{"limits.bogus": "1"},
		{"limits.memory": "lots"},
		{"limits.memory": "-1MiB"},
		{"limits.cpu": "0"},
		{"limits.cpu": "a-b"},
		{"limits.cpu.allowance": "fast"},
		{"limits.processes": "0"},
		{"boot.autostart": "maybe"},
		{"boot.autostart.priority": "high"},
		{"boot.autostart.priority": "9223372036854775808"},
		{"boot.autostart.delay": "1.5"},
		{"boot.host_shutdown_timeout": "forever"},
		{"security.privileged": "true"},
		{"environment.FOO": "a\nb"},
		{"user.": "x"},
		{"user.x": "a\x00b"},
	}

	for _, c := range bad {
		err := ValidateConfig(c)
		if err == nil {
			t.Errorf("ValidateConfig(%v) = nil, want error", c)
			continue
		}

		if !api.StatusErrorCheck(err, http.StatusBadRequest) {
			t.Errorf("ValidateConfig(%v) = %v, want a 400", c, err)
		}

		for k := range c {
			if !strings.Contains(err.Error(), k) {
				t.Errorf("error %q does not name the key %q", err, k)
			}
		}
	}
}

func TestParseBytes(t *testing.T) {
	cases := map[string]int64{"1024": 1024, "1KiB": 1024, "512MiB": 512 << 20, "1GB": 1000000000, "1.5GiB": 3 << 29}
	for in, want := range cases {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}

	for _, in := range []string{"", "MiB", "12XB", "-5", "0", "99999999999999999999TiB", "8EiB", "0.5"} {
		_, err := ParseBytes(in)
		if err == nil {
			t.Errorf("ParseBytes(%q) = nil error", in)
		}
	}
}

func TestValidateDevices(t *testing.T) {
	err := ValidateDevices(map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "default"}})
	if err != nil {
		t.Fatal(err)
	}

	bad := []map[string]map[string]string{
		{"x": {"path": "/"}},
		{"x": {"type": "gpu"}},
		{"a/b": {"type": "disk"}},
		{"x": {"type": "disk", "path": "/a\nb"}},
	}

	for _, d := range bad {
		if ValidateDevices(d) == nil {
			t.Errorf("ValidateDevices(%v) = nil", d)
		}
	}
}

func TestExpandOrder(t *testing.T) {
	inst := &db.Instance{
		Profiles: []string{"base", "extra"},
		Config:   map[string]string{"limits.memory": "1GiB"},
		Devices:  map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "fast"}},
	}

	profiles := map[string]*db.Profile{
		"base":  {Config: map[string]string{"limits.memory": "256MiB", "limits.cpu": "1"}, Devices: map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "default"}, "eth0": {"type": "nic"}}},
		"extra": {Config: map[string]string{"limits.cpu": "2"}},
	}

	config, devices := Expand(inst, profiles)
	if config["limits.memory"] != "1GiB" || config["limits.cpu"] != "2" {
		t.Errorf("expanded config %v: instance keys must win, later profiles over earlier", config)
	}

	if devices["root"]["pool"] != "fast" || devices["eth0"]["type"] != "nic" {
		t.Errorf("expanded devices %v", devices)
	}

	// Expanding must not alias the profile's maps.
	devices["eth0"]["type"] = "changed"
	if profiles["base"].Devices["eth0"]["type"] != "nic" {
		t.Error("Expand returned a device map shared with the profile")
	}
}

// Seconds from config are bounded to [0, an hour] where the daemon waits on them.
func TestSecondsConfig(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"0": 0, "30": 30 * time.Second, "-5": 0, "3600": time.Hour, "86400": time.Hour,
		"9223372036854775807": time.Hour,
	} {
		got, ok := SecondsConfig(map[string]string{"k": v}, "k")
		if !ok || got != want {
			t.Errorf("SecondsConfig(%q) = %s, %v; want %s", v, got, ok, want)
		}
	}

	for _, v := range []string{"", "x", "1.5"} {
		if _, ok := SecondsConfig(map[string]string{"k": v}, "k"); ok {
			t.Errorf("SecondsConfig(%q) ok", v)
		}
	}
}

func TestHostShutdownTimeout(t *testing.T) {
	for v, want := range map[string]string{"": "nil", "-1": "nil", "x": "nil", "0": "0s", "45": "45s", "99999": "1h0m0s"} {
		got := "nil"
		if d := HostShutdownTimeout(map[string]string{"boot.host_shutdown_timeout": v}); d != nil {
			got = d.String()
		}

		if got != want {
			t.Errorf("HostShutdownTimeout(%q) = %s, want %s", v, got, want)
		}
	}
}
