package idmap

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Default range appended for root when /etc/subuid or /etc/subgid has none, as LXD does.
const (
	DefaultRootStart = 1000000
	DefaultRootCount = 1000000000
)

// ErrNoRootRange means a subordinate id file has no entry for root.
var ErrNoRootRange = errors.New("no subordinate id range for root")

// Entry is one line of /etc/subuid or /etc/subgid: Owner may own ids [Start, Start+Count).
// Owner is a user name or a numeric uid, as written in the file.
type Entry struct {
	Owner string
	Start int64
	Count int64
}

// ParseSubID parses the content of a subordinate id file. Blank lines and '#' comments are
// skipped; a malformed line is an error naming its line number.
func ParseSubID(data []byte) ([]Entry, error) {
	var entries []Entry

	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}

		fields := strings.Split(line, ":")
		if len(fields) != 3 || fields[0] == "" {
			return nil, fmt.Errorf("parsing line %d %q: want owner:start:count", n, line)
		}

		start, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil || start < 0 {
			return nil, fmt.Errorf("parsing start on line %d %q: not a non-negative integer", n, line)
		}

		count, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil || count <= 0 {
			return nil, fmt.Errorf("parsing count on line %d %q: not a positive integer", n, line)
		}

		entries = append(entries, Entry{Owner: fields[0], Start: start, Count: count})
	}

	err := sc.Err()
	if err != nil {
		return nil, fmt.Errorf("reading subordinate ids: %w", err)
	}

	return entries, nil
}

// ReadSubID reads and parses a subordinate id file. A missing file reads as empty.
func ReadSubID(path string) ([]Entry, error) {
	_, entries, err := readSubIDFile(path)
	return entries, err
}

// RootRange returns root's range among entries ("root" or "0"). When root has several, the
// largest wins (ties: the first), since Berth allocates every container from one range.
func RootRange(entries []Entry) (start, count int64, err error) {
	found := false
	for _, e := range entries {
		if e.Owner != "root" && e.Owner != "0" {
			continue
		}

		if !found || e.Count > count {
			start, count, found = e.Start, e.Count, true
		}
	}

	if !found {
		return 0, 0, ErrNoRootRange
	}

	return start, count, nil
}

// EnsureRootRange returns root's subordinate uid and gid ranges, first appending
// "root:1000000:1000000000" to each file that has no entry for root (as LXD does). If that
// default would overlap another owner's entry, the appended range starts after the highest
// existing entry instead, aligned to DefaultSize. Files are rewritten atomically (temporary
// file, fsync, rename) with mode 0644 and their existing content kept.
func EnsureRootRange(subuidPath, subgidPath string) (uidStart, uidCount, gidStart, gidCount int64, err error) {
	uidStart, uidCount, err = ensureRootEntry(subuidPath)
	if err != nil {
		return 0, 0, 0, 0, err
	}

	gidStart, gidCount, err = ensureRootEntry(subgidPath)
	if err != nil {
		return 0, 0, 0, 0, err
	}

	return uidStart, uidCount, gidStart, gidCount, nil
}

func ensureRootEntry(path string) (start, count int64, err error) {
	entries, err := ReadSubID(path)
	if err != nil {
		return 0, 0, err
	}

	start, count, err = RootRange(entries)
	if err == nil {
		return start, count, nil
	}

	start, count = freeRootRange(entries)

	err = appendEntry(path, Entry{Owner: "root", Start: start, Count: count})
	if err != nil {
		return 0, 0, err
	}

	return start, count, nil
}

// freeRootRange picks the default root range unless another owner's entry overlaps it;
// then a range of the same size after every entry.
func freeRootRange(entries []Entry) (start, count int64) {
	start, count = DefaultRootStart, DefaultRootCount
	for _, e := range entries {
		if e.Start < start+count && start < e.Start+e.Count {
			return afterAll(entries)
		}
	}

	return start, count
}
