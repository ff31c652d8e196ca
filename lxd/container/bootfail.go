package container

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A start waits until the container's init is past the point where it dies of the host
// (systemd as PID 1 exits when it cannot set up its manager: the shared inotify budget
// spent, most often), so that such a death fails the start with its reason instead of
// leaving a container that stops a moment after it "started".
//
// For systemd that point is its move into init.scope: manager_new creates the cgroup
// inotify object, then moves PID 1 into init.scope; the later steps of manager_new
// ignore their failures. The move is seen from the host in /proc/<pid>/cgroup, polled
// rather than watched: inotify is the very budget that may be spent. For another init
// there is no such mark, and a death counts as during boot until the start returns.

// bootWaitMax bounds the wait for systemd's mark on a host too loaded to reach it soon;
// past it the start succeeds and a later death is an ordinary stop.
const bootWaitMax = 10 * time.Second

// The wait looks first after bootPoll, then ever less often up to bootPollMax apart (a
// read of a 10-line proc file each, and a wakeup of the daemon): systemd takes tens to
// hundreds of milliseconds to get there, and looking every 2 ms all along cost ~10 % of
// the daemon's CPU per start on a loaded host. A start returns at most bootPollMax after
// the mark; the boot itself never waits for the look.
const (
	bootPoll    = 2 * time.Millisecond
	bootPollMax = 10 * time.Millisecond
)

// deathWait bounds the wait for the monitor's report once init is seen dead.
const deathWait = 3 * time.Second

// BootError is a container whose init exited while it booted.
type BootError struct {
	Reason string // from the console, or how init ended
	Exit   *Exit  // nil if the monitor did not say
}

func (e *BootError) Error() string { return "container init exited during boot: " + e.Reason }

// WaitBoot returns once the container's init is past the point where it dies of the host
// (above), a *BootError if it exited first, or ctx's error. Past bootWaitMax it returns
// nil.
func (m *Monitor) WaitBoot(ctx context.Context) error {
	pid := m.initPID
	if !isSystemd(pid) {
		return m.BootFailure(nil)
	}

	deadline := time.NewTimer(bootWaitMax)
	defer deadline.Stop()

	interval := bootPoll
	tick := time.NewTimer(interval)
	defer tick.Stop()

	for !inInitScope(pid) {
		select {
		case <-m.done:
			return m.bootError()
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return nil
		case <-tick.C:
		}

		interval = min(interval*3/2, bootPollMax)
		tick.Reset(interval)
	}

	return m.BootFailure(nil)
}

// BootFailure is err, unless the container's init has exited: then it is a *BootError
// (init that died says why, not the NIC that could not follow it into its namespace). It
// waits for the monitor's report only when init is gone, so a live container costs one
// read of /proc.
func (m *Monitor) BootFailure(err error) error {
	select {
	case <-m.done:
		return m.bootError()
	default:
	}

	if running(m.initPID) {
		return err
	}

	select {
	case <-m.done:
		return m.bootError()
	case <-time.After(deathWait):
		return &BootError{Reason: "init (pid " + strconv.Itoa(m.initPID) + ") is gone and the monitor did not report it; see monitor.log in " + m.runDir}
	}
}

// bootError reads how init ended and why, once the monitor has finished (Done closed):
// it wrote the console to RunDir/console.log before reporting.
func (m *Monitor) bootError() *BootError {
	e := m.Exit()
	console, _ := readTail(filepath.Join(m.runDir, consoleFile), consoleRingSize)
	return &BootError{Reason: BootReason(console, e), Exit: e}
}

// readTail reads up to the last max bytes of a file.
func readTail(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}

	defer func() { _ = f.Close() }()

	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}

	if fi.Size() > max {
		_, err = f.Seek(fi.Size()-max, io.SeekStart)
		if err != nil {
			return nil, err
		}
	}

	return io.ReadAll(io.LimitReader(f, max))
}

// isSystemd says whether pid runs systemd. The executable, not comm: systemd renames
// itself only once running, and /sbin/init is usually a link to it.
func isSystemd(pid int) bool {
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	return err == nil && filepath.Base(strings.TrimSuffix(exe, " (deleted)")) == "systemd"
}

// inInitScope says whether pid has moved into an init.scope cgroup (any hierarchy).
func inInitScope(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return false
	}

	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if strings.HasSuffix(sc.Text(), "/init.scope") {
			return true
		}
	}

	return false
}

// running says whether pid runs and is not a zombie waiting for the monitor to reap it.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}

	// "pid (comm) S ...": comm may hold spaces and parentheses; the state follows the
	// last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}

	return b[i+2] != 'Z' && b[i+2] != 'X'
}

var errNoReason = errors.New("no reason in the console")

// reasonHint is a console message berth recognises, with the host limit to raise.
type reasonHint struct {
	all  []string // every one in the line
	says string
}

// hints are deaths of a host whose shared limits are spent, where the message alone does
// not name the limit. Other failures are quoted.
var hints = []reasonHint{
	{[]string{"inotify", "Too many open files"}, "Too many open files (inotify): raise fs.inotify.max_user_instances"},
	{[]string{"inotify", "No space left on device"}, "No space left on device (inotify watches): raise fs.inotify.max_user_watches"},
}

// maxReason bounds a reason quoted from the console (written by the container).
const maxReason = 200

// BootReason says why init exited from what it printed on the console (hostile text:
// escapes and control characters removed, length bounded) and how it ended: a known
// message becomes a hint naming the limit to raise; else the first failure of the last
// boot is quoted; else the exit status.
func BootReason(console []byte, e *Exit) string {
	lines := consoleLines(console)
	prog := "init"
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "systemd ") && strings.Contains(lines[i], "running in system mode") {
			prog = "systemd"
			lines = lines[i:] // the last boot only
			break
		}
	}

	reason, err := failureLine(lines)
	if err == nil {
		return prog + ": " + reason
	}

	return prog + " " + exitText(e) + " and its console says no more (berth console --show-log)"
}

func failureLine(lines []string) (string, error) {
	for _, h := range hints {
		for _, l := range lines {
			if containsAll(l, h.all) {
				return h.says, nil
			}
		}
	}

	for _, l := range lines {
		if strings.HasPrefix(l, "Failed to ") {
			return strings.ToValidUTF8(clip(l, maxReason), "?"), nil
		}
	}

	return "", errNoReason
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}

	return true
}

func exitText(e *Exit) string {
	switch {
	case e == nil:
		return "ended"
	case e.Signal != 0:
		return "was killed by signal " + strconv.Itoa(e.Signal)
	default:
		return "exited with status " + strconv.Itoa(e.Code)
	}
}

// consoleLines splits console output into lines of printable text: terminal escape
// sequences and control characters go, carriage returns end lines.
func consoleLines(b []byte) []string {
	var lines []string
	var cur strings.Builder
	flush := func() {
		if l := strings.TrimSpace(cur.String()); l != "" {
			lines = append(lines, l)
		}

		cur.Reset()
	}

	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == 0x1b:
			i = skipEscape(b, i)
		case c == '\n' || c == '\r':
			flush()
		case c < 0x20 || c == 0x7f:
		default:
			if cur.Len() < 4*maxReason {
				cur.WriteByte(c)
			}
		}
	}

	flush()
	return lines
}

// skipEscape returns the index of the last byte of the escape sequence at b[i] (ESC): a
// CSI sequence ends at its final byte (0x40-0x7e); other escapes are two bytes.
func skipEscape(b []byte, i int) int {
	if i+1 < len(b) && b[i+1] == '[' {
		for j := i + 2; j < len(b); j++ {
			if b[j] >= 0x40 && b[j] <= 0x7e {
				return j
			}
		}

		return len(b) - 1
	}

	return min(i+1, len(b)-1)
}

// clip bounds s to n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}

	cut := n
	for cut > 0 && s[cut]&0xc0 == 0x80 {
		cut--
	}

	return s[:cut] + "…"
}
