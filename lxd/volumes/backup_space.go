package volumes

import (
	"fmt"
	"net/http"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/api"
)

// unpackReserve is the free space an import leaves on the filesystem it unpacks on.
const unpackReserve = 1 << 30

// freeSpace returns the bytes unprivileged writers may still use on dir's filesystem (a
// variable for tests).
var freeSpace = func(dir string) (int64, error) {
	var st unix.Statfs_t
	err := unix.Statfs(dir, &st)
	if err != nil {
		return 0, err
	}

	return int64(st.Bavail) * st.Bsize, nil
}

// unpackBudget is how many bytes an import may unpack into dir: maxUnpacked, but no more
// than a third of what is free beyond unpackReserve, since each byte is written three
// times before the import ends (the split tarball and the unpacked tree in dir, the
// volume in its pool, often the same filesystem). A sparse member or a few KB of gzip
// would otherwise fill the host's disk with zeros.
func unpackBudget(dir string) (int64, error) {
	free, err := freeSpace(dir)
	if err != nil {
		return 0, fmt.Errorf("free space of %q: %w", dir, err)
	}

	budget := min(int64(maxUnpacked), (free-unpackReserve)/3)
	if budget <= 0 {
		return 0, api.StatusErrorf(http.StatusInsufficientStorage, "not enough free space to import a volume backup (%d bytes free, %d kept)", free, int64(unpackReserve))
	}

	return budget, nil
}

// SpoolLimit is how many bytes of an uploaded backup may be spooled into dir:
// MaxImportSize, but never into the last unpackReserve bytes of its filesystem.
func SpoolLimit(dir string) (int64, error) {
	free, err := freeSpace(dir)
	if err != nil {
		return 0, fmt.Errorf("free space of %q: %w", dir, err)
	}

	limit := min(int64(MaxImportSize), free-unpackReserve)
	if limit <= 0 {
		return 0, api.StatusErrorf(http.StatusInsufficientStorage, "not enough free space to receive a volume backup (%d bytes free, %d kept)", free, int64(unpackReserve))
	}

	return limit, nil
}
