package idmap

import (
	"errors"
	"fmt"
	"slices"
)

// ErrRangeExhausted means no free block of ids is left in the range.
var ErrRangeExhausted = errors.New("subordinate id range exhausted")

// Allocate returns the lowest free base for a new container's block of size ids.
// Candidate bases are rangeStart, rangeStart+size, …, each block lying wholly inside
// [rangeStart, rangeStart+rangeCount). used holds the bases of existing containers, each
// owning [base, base+size); a candidate overlapping any of them is skipped, so bases that
// are not aligned (set by hand or by an older layout) are still respected. The volume id
// block (VolumeBase) is never given out, whatever the range.
func Allocate(used []int64, rangeStart, rangeCount, size int64) (int64, error) {
	if size <= 0 {
		return 0, fmt.Errorf("allocating ids: size %d is not positive", size)
	}

	if rangeStart < 0 || rangeCount < 0 {
		return 0, fmt.Errorf("allocating ids: invalid range %d+%d", rangeStart, rangeCount)
	}

	sorted := slices.Clone(used)
	slices.Sort(sorted)

	end := rangeStart + rangeCount
	i := 0
	for base := rangeStart; base+size <= end; base += size {
		// Skip used blocks that end at or before this candidate.
		for i < len(sorted) && sorted[i]+size <= base {
			i++
		}

		if i < len(sorted) && sorted[i] < base+size {
			// Overlap; the next aligned candidate past this block is found by the loop.
			continue
		}

		if base < VolumeBase+DefaultSize && VolumeBase < base+size {
			// The ids custom volumes store (volume.go): a container owning them on the
			// host would own every volume's files.
			continue
		}

		return base, nil
	}

	return 0, fmt.Errorf("allocating %d ids in [%d, %d) with %d in use: %w", size, rangeStart, end, len(used), ErrRangeExhausted)
}
