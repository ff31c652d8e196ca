package tuning

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/lxd/db"
)

// ConfigKey is the server setting (node_config) that leaves the host alone when false.
const ConfigKey = "core.host_tuning"

// EnvOff is the environment variable that, set to 0 or false, turns tuning off for one
// run of berthd whatever the setting says (the integration tests' daemons use it).
const EnvOff = "BERTH_HOST_TUNING"

// ProcSys is where the kernel's sysctls are.
const ProcSys = "/proc/sys"

// ValidConfig checks a value of core.host_tuning: a boolean.
func ValidConfig(v string) error {
	_, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("%q is not true or false", v)
	}

	return nil
}

// AtStart is berthd's start hook: it raises the host's shared limits and berthd's
// RLIMIT_NOFILE, one log line per change, unless tuning is off; then it only logs the
// limits that stay below production. It never fails the start: a host it cannot tune
// (read-only /proc/sys in a nested container) still runs containers, fewer of them. The
// report says what it tried and could not raise (nothing when tuning is off).
func AtStart(ctx context.Context, d *db.DB, log *slog.Logger) Report {
	off := offBy(ctx, d, log)
	if off != "" {
		var below []string
		for _, l := range Check(ProcSys, Settings) {
			below = append(below, fmt.Sprintf("%s=%d<%d", l.Key, l.Old, l.Want))
		}

		if len(below) > 0 {
			log.Info("host tuning off; limits below production left alone", "because", off, "below", strings.Join(below, " "))
		}

		return Report{}
	}

	changed, low := Raise(ProcSys, Settings)
	for _, c := range changed {
		log.Info("raised host limit", "sysctl", c.Key, "from", c.Old, "to", c.New)
	}

	for _, l := range low {
		log.Warn("host limit stays below production; fewer containers will boot", "sysctl", l.Key, "value", l.Old, "production", l.Want, "err", l.Err)
	}

	nrOpen, _ := readInt(sysctlPath(ProcSys, "fs.nr_open"))
	old, now, err := raiseNofile(processLimits{}, NofileTarget, uint64(max(nrOpen, 0)))
	if now != old {
		log.Info("raised berthd's open file limit", "from", fmt.Sprintf("%d/%d", old.Cur, old.Max), "to", fmt.Sprintf("%d/%d", now.Cur, now.Max))
	}

	if err != nil {
		log.Warn("berthd's open file limit stays below production", "soft", now.Cur, "hard", now.Max, "production", NofileTarget, "err", err)
	}

	target, set, derr := FavorDynmods("/proc/self/mountinfo")
	switch {
	case errors.Is(derr, ErrNoDynmods):
		log.Info("cgroup2 left as it is", "reason", derr)
	case derr != nil:
		log.Warn("cgroup2 left without "+Dynmods+"; each start waits an RCU grace period to move init into its cgroups", "mount", target, "err", derr)
	case set:
		log.Info("set "+Dynmods+" on the host's cgroup2: moving a process between cgroups no longer waits an RCU grace period", "mount", target)
	}

	rep := Report{Tried: true, Low: low}
	if err != nil {
		rep.Nofile = fmt.Errorf("soft %d, hard %d, production %d: %w", now.Cur, now.Max, NofileTarget, err)
	}

	return rep
}

// Report is what AtStart tried and could not do (berthd records it as warnings).
type Report struct {
	Tried  bool  // tuning was on
	Low    []Low // limits that stay below production
	Nofile error // berthd's RLIMIT_NOFILE could not be raised
}

// offBy says why tuning is off ("" when on): the environment first, then the setting.
// An unreadable setting counts as on, the default.
func offBy(ctx context.Context, d *db.DB, log *slog.Logger) string {
	if v, ok := os.LookupEnv(EnvOff); ok {
		on, err := strconv.ParseBool(v)
		if err == nil && !on {
			return EnvOff + "=" + v
		}
	}

	var config map[string]string
	err := d.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		config, err = tx.GetNodeConfig(ctx)
		return err
	})
	if err != nil {
		log.Warn("reading "+ConfigKey+"; tuning the host", "err", err)
		return ""
	}

	v, ok := config[ConfigKey]
	if !ok {
		return ""
	}

	on, err := strconv.ParseBool(v)
	if err != nil {
		log.Warn("bad "+ConfigKey+"; tuning the host", "value", v)
		return ""
	}

	if !on {
		return ConfigKey + "=" + v
	}

	return ""
}
