package trust

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// expiryTerm is one term of an LXD expiry such as core.remote_token_expiry: a count and
// a unit (S seconds, M minutes, H hours, d days, w weeks, m months, y years). S is
// berthd's: short-lived tokens for scripts and tests.
var expiryTerm = regexp.MustCompile(`^(\d{1,9})(S|M|H|d|w|m|y)$`)

// ParseExpiry returns when an expiry ("1d 12H") counted from now ends; zero for "".
func ParseExpiry(now time.Time, expiry string) (time.Time, error) {
	fields := strings.Fields(expiry)
	if len(fields) == 0 {
		return time.Time{}, nil
	}

	if len(fields) > 7 {
		return time.Time{}, fmt.Errorf("expiry %q has too many terms", expiry)
	}

	t := now
	for _, f := range fields {
		m := expiryTerm.FindStringSubmatch(f)
		if m == nil {
			return time.Time{}, fmt.Errorf("%q is not an expiry such as 30S, 10M, 12H, 7d, 2w, 6m or 1y", f)
		}

		n, _ := strconv.Atoi(m[1])
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
