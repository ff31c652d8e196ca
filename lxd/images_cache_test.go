package main

import (
	"testing"
	"time"
)

func TestParseCacheDays(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"":       10 * 24 * time.Hour,
		"10":     10 * 24 * time.Hour,
		"0":      0,
		"0.5":    12 * time.Hour,
		"0.0001": 8640 * time.Millisecond,
	} {
		got, err := parseCacheDays(v)
		if err != nil || got != want {
			t.Errorf("parseCacheDays(%q) = %v, %v; want %v", v, got, err, want)
		}
	}

	for _, v := range []string{"-1", "ten", "NaN", "Inf", "1e9", "36501", " 1"} {
		_, err := parseCacheDays(v)
		if err == nil {
			t.Errorf("parseCacheDays(%q) accepted", v)
		}
	}
}
