package idmap

import (
	"errors"
	"testing"
)

func TestAllocate(t *testing.T) {
	const s = DefaultSize
	tests := []struct {
		name  string
		used  []int64
		start int64
		count int64
		want  int64
		err   bool
	}{
		{"empty", nil, 1000000, 10 * s, 1000000, false},
		{"first used", []int64{1000000}, 1000000, 10 * s, 1000000 + s, false},
		{"hole", []int64{1000000 + 2*s, 1000000}, 1000000, 10 * s, 1000000 + s, false},
		{"unsorted dense", []int64{1000000 + s, 1000000 + 2*s, 1000000}, 1000000, 10 * s, 1000000 + 3*s, false},
		{"unaligned used blocks two", []int64{1000000 + s/2}, 1000000, 10 * s, 1000000 + 2*s, false},
		{"used outside range ignored", []int64{5, 1 << 40}, 1000000, 2 * s, 1000000, false},
		{"exactly full", []int64{1000000, 1000000 + s}, 1000000, 2 * s, 0, true},
		{"range smaller than size", nil, 1000000, s - 1, 0, true},
		{"last slot", []int64{1000000, 1000000 + s}, 1000000, 3*s + 5, 1000000 + 2*s, false},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Allocate(tt.used, tt.start, tt.count, s)
			if tt.err {
				if !errors.Is(err, ErrRangeExhausted) {
					t.Fatalf("got %d, %v; want ErrRangeExhausted", got, err)
				}

				return
			}

			if err != nil || got != tt.want {
				t.Fatalf("got %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestAllocateFillsDefaultRange(t *testing.T) {
	var used []int64
	for i := 0; i < 100; i++ {
		base, err := Allocate(used, DefaultRootStart, DefaultRootCount, DefaultSize)
		if err != nil {
			t.Fatal(err)
		}

		if base != DefaultRootStart+int64(i)*DefaultSize {
			t.Fatalf("allocation %d: base %d", i, base)
		}

		used = append(used, base)
	}

	_, err := Allocate(nil, 0, 10, 0)
	if err == nil {
		t.Error("size 0 accepted")
	}
}

// TestAllocateSkipsVolumeBlock: a root range reaching the ids custom volumes store
// (VolumeBase..+65535) never gives a container a block overlapping them: that container's
// users would own every volume's files on the host.
func TestAllocateSkipsVolumeBlock(t *testing.T) {
	start := int64(VolumeBase - 3*DefaultSize/2) // unaligned with the volume block
	used := []int64{start}
	got, err := Allocate(used, start, 4*DefaultSize, DefaultSize)
	if err != nil {
		t.Fatal(err)
	}

	if got < VolumeBase+DefaultSize && VolumeBase < got+DefaultSize {
		t.Errorf("allocated [%d, %d), overlapping the volume block at %d", got, got+DefaultSize, VolumeBase)
	}

	// Positive control: below the block, the next free block is given.
	got, err = Allocate(nil, start, 4*DefaultSize, DefaultSize)
	if err != nil || got != start {
		t.Errorf("first block: %d, %v; want %d", got, err, start)
	}
}
