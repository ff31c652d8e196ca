package confine

import (
	"sort"
)

//go:generate sh -c "go run mksyscalls.go /usr/include/x86_64-linux-gnu/asm > zsyscalls.go"

// syscallNr is one entry of a system call table.
type syscallNr struct {
	name string
	nr   uint32
}

// lookup returns the number of a system call in a table sorted by name.
func lookup(table []syscallNr, name string) (uint32, bool) {
	i := sort.Search(len(table), func(i int) bool { return table[i].name >= name })
	if i < len(table) && table[i].name == name {
		return table[i].nr, true
	}

	return 0, false
}
