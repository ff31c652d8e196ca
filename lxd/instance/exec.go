package instance

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/shared/api"
)

// Environment is the instance's environment.* keys, expanded from its profiles: the base
// of an exec's environment (lxd/session).
func (m *Manager) Environment(ctx context.Context, name string) (map[string]string, error) {
	inst, profiles, err := m.load(ctx, name)
	if err != nil {
		return nil, err
	}

	config, _ := Expand(inst, profiles)

	env := map[string]string{}
	for k, v := range config {
		if strings.HasPrefix(k, "environment.") {
			env[strings.TrimPrefix(k, "environment.")] = v
		}
	}

	return env, nil
}

// ExecTarget returns the init pid of a running, unfrozen instance: the target of an exec
// (lxd/session). Any other state is a 400, as in LXD.
func (m *Manager) ExecTarget(name string) (int, error) {
	mon := m.monitor(name)
	if mon == nil {
		return 0, api.StatusErrorf(http.StatusBadRequest, "Instance is not running")
	}

	// From the monitor handle's own records, not a round trip to the monitor: it is the
	// only one that freezes or stops the container, and it keeps init's pid.
	switch {
	case mon.Frozen():
		return 0, api.StatusErrorf(http.StatusBadRequest, "Instance is frozen")
	case mon.Stopping():
		return 0, api.StatusErrorf(http.StatusBadRequest, "Instance is stopping")
	}

	pid := mon.InitPID()
	if pid <= 0 || isDone(mon.Done()) {
		return 0, api.StatusErrorf(http.StatusBadRequest, "Instance is not running")
	}

	return pid, nil
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

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
