package sys

import (
	"slices"
	"testing"
)

func TestParseCPUList(t *testing.T) {
	got, err := ParseCPUList("3,0-1,1")
	if err != nil || !slices.Equal(got, []int{0, 1, 3}) {
		t.Fatalf("ParseCPUList = %v, %v", got, err)
	}

	for _, bad := range []string{"", "1-0", "a", "1,,2", "0-999999"} {
		_, err := ParseCPUList(bad)
		if err == nil {
			t.Errorf("ParseCPUList(%q) accepted", bad)
		}
	}
}

func TestHostFacts(t *testing.T) {
	total, err := MemTotal()
	if err != nil || total <= 0 {
		t.Fatalf("MemTotal = %d, %v", total, err)
	}

	cpus, err := OnlineCPUs()
	if err != nil || len(cpus) == 0 {
		t.Fatalf("OnlineCPUs = %v, %v", cpus, err)
	}
}
