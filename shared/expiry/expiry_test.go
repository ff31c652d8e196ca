package expiry

import (
	"testing"
	"time"
)

func TestAfter(t *testing.T) {
	now := time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
	cases := map[string]time.Time{
		"":           {},
		"   ":        {},
		"30S":        now.Add(30 * time.Second),
		"10M":        now.Add(10 * time.Minute),
		"1d 12H":     now.Add(36 * time.Hour),
		"2w":         now.AddDate(0, 0, 14),
		"1m":         now.AddDate(0, 1, 0),
		"1y":         now.AddDate(1, 0, 0),
		" 1H   30M ": now.Add(90 * time.Minute),
	}

	for in, want := range cases {
		got, err := After(now, in)
		if err != nil || !got.Equal(want) {
			t.Errorf("After(%q) = %v, %v; want %v", in, got, err, want)
		}
	}

	for _, bad := range []string{"1", "d", "1D", "-1d", "1.5d", "1d1H", "100001d", "1234567890S", "1S 1S 1S 1S 1S 1S 1S 1S"} {
		if _, err := After(now, bad); err == nil {
			t.Errorf("After(%q) accepted", bad)
		}
	}
}
