// Package tarsafe checks the member names of hostile tar archives: images and backups
// come from outside (a download, an export edited by hand, a container's own tree), and
// one check for both means a fix reaches both.
package tarsafe

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnsafe is wrapped by Split's error for a name that could reach outside the
// directory the archive is unpacked into.
var ErrUnsafe = errors.New("unsafe member name")

// Split returns the components of a member name without the empty and "." ones, so that
// "./a//b/" is [a b] and "." or "./" is empty (the archive's root). An absolute name is
// taken as relative to the archive's root, as GNU tar and LXD take it ("/rootfs/etc" is
// [rootfs etc]): archives made with absolute names are common. It refuses, wrapping
// ErrUnsafe, any ".." component and NUL bytes: joined below a root directory, the result
// always names that root or something inside it.
func Split(name string) ([]string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return nil, fmt.Errorf("%w: %q contains a NUL byte", ErrUnsafe, name)
	}

	var comps []string

	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return nil, fmt.Errorf("%w: %q contains \"..\"", ErrUnsafe, name)
		}

		comps = append(comps, c)
	}

	return comps, nil
}
