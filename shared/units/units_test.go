package units

import "testing"

func TestBytes(t *testing.T) {
	for _, c := range []struct {
		n        int64
		dec, bin string
	}{
		{0, "0B", "0B"},
		{999, "999B", "999B"},
		{1536, "1.54kB", "1.50KiB"},
		{3 << 30, "3.22GB", "3.00GiB"},
		{1 << 62, "4.61EB", "4.00EiB"},
	} {
		if got := Bytes(c.n); got != c.dec {
			t.Errorf("Bytes(%d) = %q, want %q", c.n, got, c.dec)
		}

		if got := BytesIEC(c.n); got != c.bin {
			t.Errorf("BytesIEC(%d) = %q, want %q", c.n, got, c.bin)
		}
	}
}
