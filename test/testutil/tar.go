package testutil

import (
	"archive/tar"
	"bytes"
)

// TarDeclared sums the data sizes the members of an uncompressed tarball declare, as far
// as it reads: fuzz tests of unpackers bound what they may write by it.
func TarDeclared(data []byte) int64 {
	var n int64

	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err != nil {
			return n
		}

		n += max(hdr.Size, 0)
	}
}
