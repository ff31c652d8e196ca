package tarsafe

import (
	"archive/tar"
	"fmt"
	"io"
	"strings"
)

// FirstFile reads the first regular file of an archive (directories before it are
// skipped), which must be name and at most max bytes: a backup's index comes first, and
// anything else there is refused before the rest is read.
func FirstFile(tr *tar.Reader, name string, max int64) ([]byte, error) {
	for {
		hdr, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("looking for %s: %w", name, err)
		}

		if hdr.Typeflag == tar.TypeDir {
			continue
		}

		comps, _ := Split(hdr.Name)
		if strings.Join(comps, "/") != name || hdr.Typeflag != tar.TypeReg || hdr.Size > max {
			return nil, fmt.Errorf("the first file of a backup must be %s", name)
		}

		return io.ReadAll(io.LimitReader(tr, max))
	}
}
