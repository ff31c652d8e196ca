// Package units formats byte counts as LXD's clients and operations show them.
package units

import "fmt"

// Bytes formats n in decimal units, like lxc's GetByteSizeString: "1.50MB".
func Bytes(n int64) string { return format(n, 1000, "kMGTPE", "B") }

// BytesIEC formats n in binary units, like lxc's GetByteSizeStringIEC: "1.50MiB".
func BytesIEC(n int64) string { return format(n, 1024, "KMGTPE", "iB") }

func format(n, unit int64, prefixes, suffix string) string {
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}

	div, exp := unit, 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}

	return fmt.Sprintf("%.2f%c%s", float64(n)/float64(div), prefixes[exp], suffix)
}
