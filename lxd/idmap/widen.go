package idmap

import (
	"errors"
	"fmt"
	"os"

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
// minCount ids. The new range starts after every existing entry, aligned to DefaultSize,
// so it overlaps nothing, and RootRange (the largest wins) takes it from then on.
// Containers made from the old range keep their ids: root still owns it, and the new
// uid and gid ranges keep the old ones' distance (a container's gids are placed at its
// uids' offset, IDRange.at), or nothing is written. It returns whether it appended.
func WidenRootRange(subuidPath, subgidPath string, minCount int64) (bool, error) {
	uids, err := ReadSubID(subuidPath)
	if err != nil {
		return false, err
	}

	gids, err := ReadSubID(subgidPath)
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
	if ngs-nus != gs-us {
		return false, fmt.Errorf("root's uid and gid ranges (%d, %d) cannot both grow at the same distance: add a larger root range to %s and %s by hand", us, gs, subuidPath, subgidPath)
	}

	if max(nus, ngs)+count > maxID {
		return false, fmt.Errorf("no room for %d more ids after the entries of %s and %s", count, subuidPath, subgidPath)
	}

	for _, f := range []struct {
		path  string
		start int64
	}{{subuidPath, nus}, {subgidPath, ngs}} {
		err := appendEntry(f.path, Entry{Owner: "root", Start: f.start, Count: count})
		if err != nil {
			return false, err
		}
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

// appendEntry adds e as a line of the subordinate id file at path, keeping its content,
// with mode 0644 (a missing file is created) and, through a crash, either the old file or the new one.
func appendEntry(path string, e Entry) error {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading %q: %w", path, err)
	}

	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}

	data = fmt.Appendf(data, "%s:%d:%d\n", e.Owner, e.Start, e.Count)

	return atomicfile.WriteDurable(path, data, 0o644)
}
