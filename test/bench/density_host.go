package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/lxd/tuning"
)

func sysctlFile(key string) string {
	return filepath.Join(tuning.ProcSys, strings.ReplaceAll(key, ".", "/"))
}

func readSysctl(key string) (int64, bool) {
	b, err := os.ReadFile(sysctlFile(key))
	if err != nil {
		return 0, false
	}

	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, false
	}

	v, err := strconv.ParseInt(f[0], 10, 64)
	return v, err == nil
}

// readSysctls reads every limit berthd's host tuning may raise.
func readSysctls() map[string]int64 {
	out := map[string]int64{}
	for _, s := range tuning.Settings {
		if v, ok := readSysctl(s.Key); ok {
			out[s.Key] = v
		}
	}

	return out
}

// restoreSysctls puts back the limits the bench's berthd raised (those now at berthd's
// value that were below it): the bench leaves the host as it found it. It says what it
// restored.
func restoreSysctls(saved map[string]int64) []string {
	var out []string
	for _, s := range tuning.Settings {
		was, ok := saved[s.Key]
		now, _ := readSysctl(s.Key)
		if !ok || now == was || now != s.Value {
			continue
		}

		err := os.WriteFile(sysctlFile(s.Key), []byte(strconv.FormatInt(was, 10)), 0o644)
		if err != nil {
			out = append(out, fmt.Sprintf("restoring %s to %d: %v", s.Key, was, err))
			continue
		}

		out = append(out, fmt.Sprintf("restored %s from %d to %d, as before the bench", s.Key, now, was))
	}

	return out
}

// tuningLog says what berthd's host tuning did at its start, from its log.
func tuningLog(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}

	var said []string
	for _, l := range strings.Split(string(b), "\n") {
		_, msg, ok := strings.Cut(l, "msg=")
		if ok && (strings.Contains(msg, "host limit") || strings.Contains(msg, "open file limit") || strings.Contains(msg, "host tuning")) {
			said = append(said, msg)
		}
	}

	if len(said) == 0 {
		return "changed nothing: every limit was at or above production already"
	}

	return strings.Join(said, "; ")
}

// hostLimits lists the values of the limits berthd tunes, and berthd's RLIMIT_NOFILE.
func hostLimits(berthd int) string {
	var out []string
	for _, s := range tuning.Settings {
		v, ok := readSysctl(s.Key)
		if !ok {
			continue
		}

		mark := ""
		if v < s.Value {
			mark = fmt.Sprintf(" (below production %d)", s.Value)
		}

		out = append(out, fmt.Sprintf("%s=%d%s", s.Key, v, mark))
	}

	limits, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", berthd))
	for _, l := range strings.Split(string(limits), "\n") {
		f := strings.Fields(l)
		if strings.HasPrefix(l, "Max open files") && len(f) >= 5 {
			out = append(out, fmt.Sprintf("berthd RLIMIT_NOFILE=%s/%s", f[3], f[4]))
		}
	}

	return strings.Join(out, " ")
}
