package idmap

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/berth-dev/berth/shared/atomicfile"
)

// DensityRootCount is the smallest root range a host berthd may tune keeps: 1024
// containers' own blocks (each container gets DefaultSize ids of its own). Debian's lxd
// package writes root:100000:10000001, 152 containers: the 153rd launch on a fresh host
// failed with "subordinate id range exhausted".
const DensityRootCount = 1024 * DefaultSize

// maxID bounds a range: ids are 32-bit and 2^32-1 is the kernel's invalid id.
const maxID = 1<<32 - 1

// WidenRootRange appends a default-sized root range (DefaultRootCount ids) to
// /etc/subuid and /etc/subgid when root's largest range in either holds fewer than
// minCount ids. The new range starts after every entry in each file, aligned to
// DefaultSize, so it overlaps nothing, and RootRange (the largest wins) takes it from
// then on. Containers made from the old range keep their ids: root still owns it. A
// container's gids sit at its uids' offset in root's ranges (IDRange.at), so the ranges
// RootRange picks afterwards must keep the old ones' distance: if they would not, or if
// either file cannot be written, both files are put back as they were and nothing
// changes. It returns whether it appended.
func WidenRootRange(subuidPath, subgidPath string, minCount int64) (bool, error) {
	uidData, uids, err := readSubIDFile(subuidPath)
	if err != nil {
		return false, err
	}

	gidData, gids, err := readSubIDFile(subgidPath)
	if err != nil {
		return false, err
	}

	us, uc, err := RootRange(uids)
	if err != nil {
		return false, fmt.Errorf("%s: %w", subuidPath, err)
	}

	gs, gc, err := RootRange(gids)
	if err != nil {
		return false, fmt.Errorf("%s: %w", subgidPath, err)
	}

	if uc >= minCount && gc >= minCount {
		return false, nil
	}

	nus, count := afterAll(uids)
	ngs, _ := afterAll(gids)
	uids = append(uids, Entry{Owner: "root", Start: nus, Count: count})
	gids = append(gids, Entry{Owner: "root", Start: ngs, Count: count})
	nus, _, _ = RootRange(uids)
	ngs, _, _ = RootRange(gids)

	switch {
	case ngs-nus != gs-us:
		return false, fmt.Errorf("root's uid and gid ranges (%d, %d) cannot both grow at the same distance: add a larger root range to %s and %s by hand", us, gs, subuidPath, subgidPath)
	case max(nus, ngs)+count > maxID:
		return false, fmt.Errorf("no room for %d more ids after the entries of %s and %s", count, subuidPath, subgidPath)
	}

	err = writeSubIDFile(subuidPath, uidData, Entry{Owner: "root", Start: nus, Count: count})
	if err != nil {
		return false, err
	}

	err = writeSubIDFile(subgidPath, gidData, Entry{Owner: "root", Start: ngs, Count: count})
	if err != nil {
		// Never one file widened without the other: new containers' gids would be
		// the old ones' of another container.
		rerr := writeDurable(subuidPath, uidData, 0o644)
		if rerr != nil {
			return false, fmt.Errorf("%w (and restoring %s: %v)", err, subuidPath, rerr)
		}

		return false, err
	}

	return true, nil
}

// afterAll is a DefaultRootCount range after every entry, aligned to DefaultSize (and no
// lower than DefaultRootStart).
func afterAll(entries []Entry) (start, count int64) {
	var highest int64
	for _, e := range entries {
		highest = max(highest, e.Start+e.Count)
	}

	start = (highest + DefaultSize - 1) / DefaultSize * DefaultSize

	return max(start, DefaultRootStart), DefaultRootCount
}

// readSubIDFile reads and parses a subordinate id file (missing: empty).
func readSubIDFile(path string) ([]byte, []Entry, error) {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("reading %q: %w", path, err)
	}

	entries, err := ParseSubID(data)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing %q: %w", path, err)
	}

	return data, entries, nil
}

// writeSubIDFile writes data plus e as a line to the subordinate id file at path, with
// mode 0644, so that a crash leaves either the old file or the new one.
func writeSubIDFile(path string, data []byte, e Entry) error {
	data = slices.Clone(data)
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}

	data = fmt.Appendf(data, "%s:%d:%d\n", e.Owner, e.Start, e.Count)

	return writeDurable(path, data, 0o644)
}

// writeDurable writes subordinate id files (a variable for the tests' failing writes).
var writeDurable = atomicfile.WriteDurable

// appendEntry adds e as a line of the subordinate id file at path (a missing file is
// created).
func appendEntry(path string, e Entry) error {
	data, _, err := readSubIDFile(path)
	if err != nil {
		return err
	}

	return writeSubIDFile(path, data, e)
}
