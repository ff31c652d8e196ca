package snapshot

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/expiry"
)

func TestCheckExpiry(t *testing.T) {
	now := time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)

	cases := map[string]time.Time{
		"":        {},
		"30M":     now.Add(30 * time.Minute),
		"12H":     now.Add(12 * time.Hour),
		"7d":      now.AddDate(0, 0, 7),
		"2w":      now.AddDate(0, 0, 14),
		"1m":      now.AddDate(0, 1, 0),
		"1y":      now.AddDate(1, 0, 0),
		"1d 12H":  now.AddDate(0, 0, 1).Add(12 * time.Hour),
		" 3d  2M": now.AddDate(0, 0, 3).Add(2 * time.Minute),
	}

	for in, want := range cases {
		got, err := expiry.After(now, in)
		if err != nil || !got.Equal(want) || CheckExpiry(in) != nil {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}

	for _, bad := range []string{"1", "d", "1x", "-1d", "1.5d", "1D", "99999999999d", "1d,2H"} {
		if CheckExpiry(bad) == nil {
			t.Errorf("CheckExpiry(%q) accepted", bad)
		}
	}
}
