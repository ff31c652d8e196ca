package units

import (
	"fmt"
	"strconv"
	"strings"
)

var byteUnits = map[string]int64{
	"": 1, "B": 1,
	"kB": 1000, "MB": 1000 * 1000, "GB": 1000 * 1000 * 1000, "TB": 1000 * 1000 * 1000 * 1000,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
}

// ParseBytes parses LXD-style sizes: "512MiB", "1GB", "1048576".
func ParseBytes(v string) (int64, error) {
	i := strings.IndexFunc(v, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := v, ""
	if i >= 0 {
		num, unit = v[:i], v[i:]
	}

	mult, ok := byteUnits[unit]
	if !ok || num == "" {
		return 0, fmt.Errorf("%q is not a size like 512MiB", v)
	}

	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive size", v)
	}

	// A float beyond int64 converts to a negative number on amd64, and a fraction of a
	// byte to 0: both would be accepted as limits that mean something else.
	bytes := n * float64(mult)
	if bytes >= 1<<63 || bytes < 1 {
		return 0, fmt.Errorf("%q is not a size from 1 byte to 8 EiB", v)
	}

	return int64(bytes), nil
}
