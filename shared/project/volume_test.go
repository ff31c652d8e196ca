package project

import "testing"

// A key names exactly one (project, volume) pair, and a project's key is never a default
// project's volume name (which may hold '_' but never '@').
func TestVolumeKey(t *testing.T) {
	cases := []struct{ proj, name, key string }{
		{"default", "vol", "vol"},
		{"", "a_vol", "a_vol"},
		{"a", "vol", "vol@a"},
		{"a", "x_vol", "x_vol@a"},
		{"a@b", "vol", "vol@a@b"},
		{".tmp-x", "vol", "vol@.tmp-x"},
	}

	for _, c := range cases {
		k := VolumeKey(c.proj, c.name)
		if k != c.key {
			t.Errorf("VolumeKey(%q, %q) = %q, want %q", c.proj, c.name, k, c.key)
		}

		p, n := SplitVolume(k)
		wantP := c.proj
		if wantP == "" {
			wantP = Default
		}

		if p != wantP || n != c.name {
			t.Errorf("SplitVolume(%q) = %q, %q; want %q, %q", k, p, n, wantP, c.name)
		}
	}

	if VolumeKey("a", "vol") == VolumeKey(Default, "a_vol") {
		t.Error("project a's vol and the default project's a_vol share a key")
	}

	if VolumeName(VolumeKey("a", "")) != "" || VolumeProject(VolumeKey("a", "")) != "a" {
		t.Error("a project's prefix does not read back as an empty name in it")
	}
}

func TestVolumeURL(t *testing.T) {
	for key, want := range map[string]string{
		"vol":   "/1.0/storage-pools/p/volumes/custom/vol/snapshots/s",
		"vol@a": "/1.0/storage-pools/p/volumes/custom/vol/snapshots/s?project=a",
	} {
		got := VolumeURL("p", key, "snapshots", "s")
		if got != want {
			t.Errorf("VolumeURL(p, %q) = %q, want %q", key, got, want)
		}
	}
}
