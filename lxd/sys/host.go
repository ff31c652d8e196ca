package sys

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// MemTotal is the host's memory in bytes (MemTotal of /proc/meminfo).
func MemTotal() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("reading host memory: %w", err)
	}

	defer func() { _ = f.Close() }()

	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb int64
		_, err := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kb)
		if err == nil {
			return kb * 1024, nil
		}
	}

	return 0, fmt.Errorf("no MemTotal in /proc/meminfo")
}

// OnlineCPUs lists the host's online CPUs.
func OnlineCPUs() ([]int, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil, fmt.Errorf("reading online cpus: %w", err)
	}

	return ParseCPUList(strings.TrimSpace(string(b)))
}

// CPUListRe matches the kernel's cpu list format: "0-3,5".
var CPUListRe = regexp.MustCompile(`^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$`)

// ParseCPUList reads the kernel's list format ("0-3,5") into sorted, unique CPU numbers.
// Ranges are bounded so a hostile list cannot make a huge slice.
func ParseCPUList(s string) ([]int, error) {
	if !CPUListRe.MatchString(s) {
		return nil, fmt.Errorf("%q is not a cpu list like 0-1,3", s)
	}

	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, _ := strconv.Atoi(lo)
		b := a
		if isRange {
			b, _ = strconv.Atoi(hi)
		}

		if b < a || b-a > 4096 {
			return nil, fmt.Errorf("bad cpu range %q", part)
		}

		for c := a; c <= b; c++ {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}

	sort.Ints(out)
	return out, nil
}
