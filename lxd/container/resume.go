package container

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/berth-dev/berth/lxd/nsexec"
	"golang.org/x/sys/unix"
)

// resumeMain is `__monitor <runDir>` exec'd by the holder (hold.go) with
// $_BERTH_MONITOR_RESUME naming the shared page: the container runs, init is
// our child, and the page says which inherited fds are what. The monitor
// carries on as if it had never left Go.
func resumeMain(runDir, fdText string, log *slog.Logger) int {
	// Nothing the holder passed may reach a rebooted init.
	_ = unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	_ = os.Unsetenv(nsexec.EnvMonitorResume)

	runtime.GOMAXPROCS(1)

	m, err := resumeMonitor(runDir, fdText, log)
	if err != nil {
		// Like a monitor crash: init lives on, Cleanup handles the rest.
		log.Error("resuming the monitor", "err", err)
		return 1
	}

	m.run()

	return 0
}

func resumeMonitor(runDir, fdText string, log *slog.Logger) (*monitor, error) {
	fd, err := strconv.Atoi(fdText)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("bad shared page fd %q", fdText)
	}

	sh, err := openShared(fd)
	if err != nil {
		return nil, err
	}

	m, err := newMonitor(runDir, log, sh)
	if err != nil {
		return nil, err
	}

	pid := int(int32(sh.get32(offInitPID)))

	proc, err := os.FindProcess(pid)
	if err != nil {
		return nil, fmt.Errorf("finding init %d: %w", pid, err)
	}

	// The holder left them non-blocking: pollable files, whose Close ends
	// a pending Read.
	p := &initProc{
		proc:   proc,
		master: os.NewFile(uintptr(sh.getFD(offMaster)), "console-master"),
		slave:  os.NewFile(uintptr(sh.getFD(offSlave)), "console-slave"),
	}

	lf := os.NewFile(uintptr(sh.getFD(offListener)), "monitor.sock")

	ln, err := net.FileListener(lf)
	_ = lf.Close()

	if err != nil {
		return nil, fmt.Errorf("taking over the monitor socket: %w", err)
	}

	m.ln = ln
	m.init = p
	m.startedAt = time.Unix(0, int64(sh.get64(offStartedNs))).UTC()
	m.reboots = int(sh.get32(offReboots))

	go m.drainConsole(p)
	go m.termLoop()

	if sh.get32(offTerm) != 0 {
		m.stopOnTerm()
	}

	n := int(sh.get32(offNConns))
	for i := 0; i < n && i < handoffMaxConns; i++ {
		cf := os.NewFile(uintptr(sh.getFD(offConns+8*i)), "monitor-conn")

		c, err := net.FileConn(cf)
		_ = cf.Close()

		if err != nil {
			m.log.Warn("taking over a connection", "err", err)
			continue
		}

		switch sh.get32(offConns + 8*i + 4) {
		case connWatch:
			m.serveConn(c, func(c net.Conn) { m.waitExit(c, json.NewEncoder(c)) })
		case connConsole:
			m.serveConn(c, m.adoptConsole)
		default:
			m.serveConn(c, m.handle)
		}
	}

	sh.put32(offNConns, 0)

	return m, nil
}
