package tuning

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Change is one limit raised.
type Change struct {
	Key      string
	Old, New int64
}

// Low is a limit below its production value that stays there, and why (nil: not tried).
type Low struct {
	Key       string
	Old, Want int64
	Err       error
}

// Raise raises every setting below its value under root (/proc/sys, or a fake tree in
// tests) and returns what it changed and what stays below. A sysctl this kernel lacks
// (IPv6 disabled) is skipped; a value above the production one is kept.
func Raise(root string, settings []Setting) ([]Change, []Low) {
	return walk(root, settings, writeSysctl)
}

// Check returns the settings below their values under root, changing nothing.
func Check(root string, settings []Setting) []Low {
	_, low := walk(root, settings, nil)
	return low
}

// walk reads each setting and, with a write function, raises those below.
func walk(root string, settings []Setting, write func(path string, v int64) error) ([]Change, []Low) {
	var changed []Change
	var low []Low
	for _, s := range settings {
		path := sysctlPath(root, s.Key)
		old, err := readInt(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}

		if err != nil {
			low = append(low, Low{Key: s.Key, Want: s.Value, Err: err})
			continue
		}

		if old >= s.Value {
			continue
		}

		if write == nil {
			low = append(low, Low{Key: s.Key, Old: old, Want: s.Value})
			continue
		}

		now := old
		err = write(path, s.Value)
		if err == nil {
			now, err = readInt(path) // what the kernel kept
		}

		switch {
		case err != nil:
			low = append(low, Low{Key: s.Key, Old: old, Want: s.Value, Err: err})
		case now < s.Value:
			// The kernel clamped it (bpf_jit_limit's ceiling is the JIT's memory).
			low = append(low, Low{Key: s.Key, Old: old, Want: s.Value, Err: fmt.Errorf("the kernel kept %d", now)})
			if now > old {
				changed = append(changed, Change{Key: s.Key, Old: old, New: now})
			}
		default:
			changed = append(changed, Change{Key: s.Key, Old: old, New: now})
		}
	}

	return changed, low
}

// sysctlPath maps "fs.inotify.max_user_instances" to root/fs/inotify/max_user_instances.
func sysctlPath(root, key string) string {
	return filepath.Join(root, strings.ReplaceAll(key, ".", "/"))
}

// writeSysctl writes v to an existing sysctl file (never creating one).
func writeSysctl(path string, v int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}

	_, err = f.WriteString(strconv.FormatInt(v, 10) + "\n")
	cerr := f.Close()
	if err != nil {
		return err
	}

	return cerr
}

// readInt reads a one-number sysctl (the first field, for safety with multi-value files).
func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}

	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("%s is empty", path)
	}

	v, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", path, err)
	}

	return v, nil
}
