// Package expiry parses LXD's expiry strings ("2w", "1d 12H"), used by
// snapshots.expiry, core.remote_token_expiry and the like.
package expiry

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// term is one term: a count and a unit (S seconds, M minutes, H hours, d days, w weeks,
// m months, y years). S is berthd's: short-lived tokens and snapshots for scripts and
// tests; LXD's own units are the others.
var term = regexp.MustCompile(`^(\d{1,9})(S|M|H|d|w|m|y)$`)

// Limits on the input: terms and the count of one term.
const (
	maxTerms = 7
	maxCount = 100_000
)

// After returns when an expiry counted from now ends; the zero time for "" (never).
func After(now time.Time, expiry string) (time.Time, error) {
	fields := strings.Fields(expiry)
	if len(fields) == 0 {
		return time.Time{}, nil
	}

	if len(fields) > maxTerms {
		return time.Time{}, fmt.Errorf("expiry %q has more than %d terms", expiry, maxTerms)
	}

	t := now
	for _, f := range fields {
		m := term.FindStringSubmatch(f)
		if m == nil {
			return time.Time{}, fmt.Errorf("%q is not an expiry such as 30M, 12H, 7d, 2w, 6m or 1y", f)
		}

		n, _ := strconv.Atoi(m[1])
		if n > maxCount {
			return time.Time{}, fmt.Errorf("%q is out of range", f)
		}

		switch m[2] {
		case "S":
			t = t.Add(time.Duration(n) * time.Second)
		case "M":
			t = t.Add(time.Duration(n) * time.Minute)
		case "H":
			t = t.Add(time.Duration(n) * time.Hour)
		case "d":
			t = t.AddDate(0, 0, n)
		case "w":
			t = t.AddDate(0, 0, 7*n)
		case "m":
			t = t.AddDate(0, n, 0)
		case "y":
			t = t.AddDate(n, 0, 0)
		}
	}

	return t, nil
}

// Check validates an expiry (as a config key's check).
func Check(expiry string) error {
	_, err := After(time.Now(), expiry)
	return err
}
