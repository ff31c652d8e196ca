package project

import "testing"

func TestKeyRoundTrip(t *testing.T) {
	cases := []struct{ proj, name, key string }{
		{"", "c1", "c1"},
		{Default, "c1", "c1"},
		{"p1", "c1", "p1_c1"},
		{"team-a", "web-1", "team-a_web-1"},
	}

	for _, c := range cases {
		got := Key(c.proj, c.name)
		if got != c.key {
			t.Errorf("Key(%q, %q) = %q, want %q", c.proj, c.name, got, c.key)
		}

		p, n := Split(got)
		wantProj := c.proj
		if wantProj == "" {
			wantProj = Default
		}

		if p != wantProj || n != c.name {
			t.Errorf("Split(%q) = %q, %q, want %q, %q", got, p, n, wantProj, c.name)
		}
	}
}

// Two projects' instances of one name have different keys, and neither collides with
// a default-project instance (whose names cannot hold '_').
func TestKeysDoNotCollide(t *testing.T) {
	a, b, d := Key("p1", "c1"), Key("p2", "c1"), Key(Default, "c1")
	if a == b || a == d || b == d {
		t.Fatalf("keys collide: %q %q %q", a, b, d)
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"p1", "team-a", "Default2", "a.b"} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q): %v", ok, err)
		}
	}

	for _, bad := range []string{"", "a_b", "a/b", ".", "..", "*", "a b", "a\nb", "a%b", string(make([]byte, 64))} {
		if err := ValidateName(bad); err == nil {
			t.Errorf("ValidateName(%q) accepted", bad)
		}
	}
}

func TestValidateKey(t *testing.T) {
	for _, ok := range []string{"c1", "p1_c1", "team-a_web-1"} {
		if err := ValidateKey(ok); err != nil {
			t.Errorf("ValidateKey(%q): %v", ok, err)
		}
	}

	long := "p" + string(make([]byte, 0)) + "0123456789012345678901234567890_c0123456789012345678901234567890123"
	for _, bad := range []string{"", "_c1", "p1_", "p1_c_1", "p1_1c", long} {
		if err := ValidateKey(bad); err == nil {
			t.Errorf("ValidateKey(%q) accepted", bad)
		}
	}
}
