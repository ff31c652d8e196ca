package instance

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/nsexec"
	"github.com/berth-dev/berth/shared/api"
)

// DefaultPath is the PATH of exec'd commands unless the instance or the
// request sets one (LXD's).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ExecArgs is one command to run in a running instance.
type ExecArgs struct {
	Command []string
	Env     map[string]string // as returned by ExecEnv
	UID     uint32
	GID     uint32
	Cwd     string // "" means the user's home (from the container's /etc/passwd)

	// PTY asks for a terminal allocated inside the container (Process.PTY
	// is its master); otherwise Stdin/Stdout/Stderr are the command's stdio.
	PTY           bool
	Width, Height int
	Stdin         *os.File
	Stdout        *os.File
	Stderr        *os.File
}

// ExecEnv checks that an instance can run commands (it exists, is running
// and not frozen: 400 otherwise, as LXD) and returns the environment of a
// command as LXD builds it: the instance's environment.* keys, then the
// request's, then defaults for PATH, LANG and, for root, HOME and USER.
// (For other users HOME and USER come from the container's /etc/passwd.)
func (m *Manager) ExecEnv(ctx context.Context, name string, req map[string]string, uid uint32) (map[string]string, error) {
	// The monitor's answer and the database's come from two processes:
	// ask both at once.
	target := make(chan error, 1)

	go func() {
		_, err := m.execTarget(name)
		target <- err
	}()

	inst, profiles, err := m.load(ctx, name)
	terr := <-target

	if err != nil {
		return nil, err
	}

	if terr != nil {
		return nil, terr
	}

	config, _ := Expand(inst, profiles)

	env := map[string]string{}
	for k, v := range config {
		if strings.HasPrefix(k, "environment.") {
			env[strings.TrimPrefix(k, "environment.")] = v
		}
	}

	maps.Copy(env, req)

	defaults := map[string]string{"PATH": DefaultPath, "LANG": "C.UTF-8"}
	if uid == 0 {
		defaults["HOME"] = "/root"
		defaults["USER"] = "root"
	}

	for k, v := range defaults {
		_, ok := env[k]
		if !ok {
			env[k] = v
		}
	}

	return env, nil
}

// execTarget returns the init pid of a running, unfrozen instance.
func (m *Manager) execTarget(name string) (int, error) {
	mon := m.monitor(name)
	if mon == nil {
		return 0, api.StatusErrorf(http.StatusBadRequest, "Instance is not running")
	}

	st, err := mon.State()
	if err != nil {
		return 0, api.StatusErrorf(http.StatusBadRequest, "Instance is not running")
	}

	switch st.Status {
	case "frozen":
		return 0, api.StatusErrorf(http.StatusBadRequest, "Instance is frozen")
	case "stopping":
		return 0, api.StatusErrorf(http.StatusBadRequest, "Instance is stopping")
	}

	return st.InitPID, nil
}

// Exec runs a command in a running instance: in all its namespaces and in
// its init's cgroups (lxd/nsexec), through the instance's exec server where
// the host allows it, else with a helper of its own. It returns once the
// command was exec'd; a command that cannot be started inside fails with
// *nsexec.ExecError.
func (m *Manager) Exec(ctx context.Context, name string, a ExecArgs) (*nsexec.Process, error) {
	env := make([]string, 0, len(a.Env))
	for k, v := range a.Env {
		env = append(env, k+"="+v)
	}

	sort.Strings(env)

	o := nsexec.Options{
		Command: a.Command,
		Env:     env,
		UID:     a.UID,
		GID:     a.GID,
		Cwd:     a.Cwd,
		PTY:     a.PTY,
		Width:   clampSize(a.Width),
		Height:  clampSize(a.Height),
		Stdin:   a.Stdin,
		Stdout:  a.Stdout,
		Stderr:  a.Stderr,
	}

	if cgroup.CanPlaceInForeignGroups() {
		return m.execServed(name, o)
	}

	return m.execOneShot(name, o)
}

// execOneShot runs o with a helper of its own.
func (m *Manager) execOneShot(name string, o nsexec.Options) (*nsexec.Process, error) {
	pid, err := m.execTarget(name)
	if err != nil {
		return nil, err
	}

	filter, err := m.startedSeccomp(name)
	if err != nil {
		return nil, err
	}

	o.Exe, o.InitPID, o.Seccomp = m.cfg.Exe, pid, program(filter)
	o.Prepare = func(helper int) error { return cgroup.JoinLike(pid, helper, true) }

	return nsexec.Start(o)
}

// Console returns the monitor of a running instance for console access.
func (m *Manager) Console(name string) (*container.Monitor, error) {
	mon := m.monitor(name)
	if mon == nil {
		return nil, api.StatusErrorf(http.StatusBadRequest, "Instance is not running")
	}

	return mon, nil
}

// ExecOutputPath is where record-output keeps an exec's stdout or stderr
// (file is exec_<op>.stdout or .stderr).
func (m *Manager) ExecOutputPath(name, file string) string {
	return filepath.Join(m.execOutputDir(name), file)
}

func (m *Manager) execOutputDir(name string) string {
	return filepath.Join(m.instanceDir(name), "logs")
}

// execOutputName matches the files record-output writes: exec_<op uuid>.stdout|stderr.
var execOutputName = regexp.MustCompile(`^exec_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.(stdout|stderr)$`)

// IsExecOutput says whether file names a record-output file (and nothing
// else: it is safe to join to the logs directory).
func IsExecOutput(file string) bool { return execOutputName.MatchString(file) }

// ExecOutputs lists the record-output files of an instance.
func (m *Manager) ExecOutputs(name string) ([]string, error) {
	ents, err := os.ReadDir(m.execOutputDir(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}

	if err != nil {
		return nil, err
	}

	var files []string

	for _, e := range ents {
		if e.Type().IsRegular() && IsExecOutput(e.Name()) {
			files = append(files, e.Name())
		}
	}

	return files, nil
}

// ConsoleLogPath is where a stopped instance's console log is kept.
func (m *Manager) ConsoleLogPath(name string) string {
	return container.ConsoleLogPath(m.runDir(name))
}

func clampSize(n int) uint16 {
	if n <= 0 || n > 0xffff {
		return 0
	}

	return uint16(n)
}
