package tuning

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/lxd/db"
)

// fakeProcSys makes a /proc/sys-like tree with the given values.
func fakeProcSys(t *testing.T, values map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for k, v := range values {
		p := sysctlPath(root, k)
		err := os.MkdirAll(filepath.Dir(p), 0o755)
		if err != nil {
			t.Fatal(err)
		}

		err = os.WriteFile(p, []byte(v), 0o644)
		if err != nil {
			t.Fatal(err)
		}
	}

	return root
}

func value(t *testing.T, root, key string) string {
	t.Helper()
	b, err := os.ReadFile(sysctlPath(root, key))
	if err != nil {
		t.Fatal(err)
	}

	return strings.TrimSpace(string(b))
}

var testSettings = []Setting{
	{"fs.inotify.max_user_instances", 1048576},
	{"kernel.pid_max", 4194304},
	{"net.ipv6.neigh.default.gc_thresh3", 8192}, // missing: IPv6 off
	{"vm.max_map_count", 262144},
	{"fs.aio-max-nr", 524288},
}

// TestRaise raises what is below, keeps what is above (never lowering), and skips a
// sysctl the kernel lacks.
func TestRaise(t *testing.T) {
	root := fakeProcSys(t, map[string]string{
		"fs.inotify.max_user_instances": "128\n",
		"kernel.pid_max":                "4194304\n",
		"vm.max_map_count":              "1000000\n",
		"fs.aio-max-nr":                 "65536\n",
	})

	changed, low := Raise(root, testSettings)
	want := []Change{
		{"fs.inotify.max_user_instances", 128, 1048576},
		{"fs.aio-max-nr", 65536, 524288},
	}

	if !reflect.DeepEqual(changed, want) || len(low) != 0 {
		t.Fatalf("Raise = %v, %v; want %v and nothing low", changed, low, want)
	}

	for k, v := range map[string]string{
		"fs.inotify.max_user_instances": "1048576",
		"kernel.pid_max":                "4194304",
		"vm.max_map_count":              "1000000", // higher than ours: kept
		"fs.aio-max-nr":                 "524288",
	} {
		if got := value(t, root, k); got != v {
			t.Errorf("%s = %s, want %s", k, got, v)
		}
	}

	changed, low = Raise(root, testSettings)
	if len(changed) != 0 || len(low) != 0 {
		t.Errorf("second Raise = %v, %v; want nothing", changed, low)
	}
}

// TestCheckChangesNothing is the core.host_tuning=false path: it reports, never writes.
func TestCheckChangesNothing(t *testing.T) {
	root := fakeProcSys(t, map[string]string{
		"fs.inotify.max_user_instances": "128",
		"kernel.pid_max":                "32768",
		"vm.max_map_count":              "262144",
		"fs.aio-max-nr":                 "junk",
	})

	low := Check(root, testSettings)
	if len(low) != 3 || low[0].Key != "fs.inotify.max_user_instances" || low[0].Old != 128 || low[0].Want != 1048576 ||
		low[1].Key != "kernel.pid_max" || low[1].Err != nil || low[2].Key != "fs.aio-max-nr" || low[2].Err == nil {
		t.Errorf("Check = %+v", low)
	}

	if value(t, root, "fs.inotify.max_user_instances") != "128" || value(t, root, "kernel.pid_max") != "32768" {
		t.Error("Check wrote a value")
	}
}

// TestRaiseFailures reports a refused write and a value the kernel clamped as low, with
// the reason, and a partial raise as a change too.
func TestRaiseFailures(t *testing.T) {
	root := fakeProcSys(t, map[string]string{
		"fs.inotify.max_user_instances": "128",
		"kernel.pid_max":                "32768",
	})

	refused := errors.New("read-only file system")
	write := func(path string, v int64) error {
		if strings.HasSuffix(path, "pid_max") {
			return refused
		}

		return os.WriteFile(path, []byte("4096\n"), 0o644) // clamped
	}

	changed, low := walk(root, testSettings[:2], write)
	if !reflect.DeepEqual(changed, []Change{{"fs.inotify.max_user_instances", 128, 4096}}) {
		t.Errorf("changed = %v", changed)
	}

	if len(low) != 2 || low[0].Err == nil || !strings.Contains(low[0].Err.Error(), "kept 4096") || !errors.Is(low[1].Err, refused) || low[1].Old != 32768 {
		t.Errorf("low = %+v", low)
	}
}

type fakeLimits struct {
	cur    syscall.Rlimit
	setErr error
	sets   int
}

func (f *fakeLimits) get() (syscall.Rlimit, error) { return f.cur, nil }

func (f *fakeLimits) set(r syscall.Rlimit) error {
	f.sets++
	if f.setErr != nil {
		return f.setErr
	}

	f.cur = r
	return nil
}

func TestRaiseNofile(t *testing.T) {
	for _, c := range []struct {
		name        string
		have        syscall.Rlimit
		nrOpen      uint64
		want        syscall.Rlimit
		wantChanged bool
	}{
		{"both low", syscall.Rlimit{Cur: 1024, Max: 4096}, 1048576, syscall.Rlimit{Cur: 1048576, Max: 1048576}, true},
		{"capped by nr_open", syscall.Rlimit{Cur: 1024, Max: 4096}, 65536, syscall.Rlimit{Cur: 65536, Max: 65536}, true},
		{"hard higher: kept", syscall.Rlimit{Cur: 1024, Max: 1 << 30}, 1 << 30, syscall.Rlimit{Cur: 1048576, Max: 1 << 30}, true},
		{"both higher: kept", syscall.Rlimit{Cur: 1 << 21, Max: 1 << 22}, 1 << 30, syscall.Rlimit{Cur: 1 << 21, Max: 1 << 22}, false},
		{"soft higher than target", syscall.Rlimit{Cur: 1 << 21, Max: 1 << 21}, 65536, syscall.Rlimit{Cur: 1 << 21, Max: 1 << 21}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeLimits{cur: c.have}
			old, now, err := raiseNofile(f, NofileTarget, c.nrOpen)
			if err != nil || old != c.have || now != c.want || f.cur != c.want || (f.sets > 0) != c.wantChanged {
				t.Errorf("raiseNofile(%+v) = %+v, %+v, %v (sets %d); want %+v", c.have, old, now, err, f.sets, c.want)
			}
		})
	}

	// Without CAP_SYS_RESOURCE: the hard limit stays, the soft one goes up to it.
	f := &hardCapped{fakeLimits: fakeLimits{cur: syscall.Rlimit{Cur: 1024, Max: 4096}}}
	_, now, err := raiseNofile(f, NofileTarget, 1048576)
	if !errors.Is(err, syscall.EPERM) || now != (syscall.Rlimit{Cur: 4096, Max: 4096}) || f.cur != now {
		t.Errorf("raise without CAP_SYS_RESOURCE = %+v, %v (limit %+v)", now, err, f.cur)
	}

	f = &hardCapped{fakeLimits: fakeLimits{cur: syscall.Rlimit{Cur: 4096, Max: 4096}}}
	_, now, err = raiseNofile(f, NofileTarget, 1048576)
	if !errors.Is(err, syscall.EPERM) || now != f.cur || f.cur.Cur != 4096 {
		t.Errorf("nothing to raise without CAP_SYS_RESOURCE = %+v, %v", now, err)
	}

	g := &fakeLimits{cur: syscall.Rlimit{Cur: 1024, Max: 4096}, setErr: syscall.EINVAL}
	_, now, err = raiseNofile(g, NofileTarget, 1048576)
	if !errors.Is(err, syscall.EINVAL) || now != g.cur || g.cur.Cur != 1024 {
		t.Errorf("refused raise = %+v, %v", now, err)
	}
}

// hardCapped refuses to raise the hard limit, as the kernel does without CAP_SYS_RESOURCE.
type hardCapped struct{ fakeLimits }

func (h *hardCapped) set(r syscall.Rlimit) error {
	if r.Max > h.cur.Max {
		return syscall.EPERM
	}

	return h.fakeLimits.set(r)
}

func TestValidConfig(t *testing.T) {
	for v, ok := range map[string]bool{"true": true, "false": true, "0": true, "1": true, "yes": false, "": false} {
		if err := ValidConfig(v); (err == nil) != ok {
			t.Errorf("ValidConfig(%q) = %v", v, err)
		}
	}
}

// TestOffBy reads the switch from node_config, with the environment first.
func TestOffBy(t *testing.T) {
	ctx := context.Background()
	d, err := db.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = d.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	set := func(v string) {
		err := d.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
			if v == "" {
				return tx.UpdateNodeConfig(ctx, nil, []string{ConfigKey})
			}

			return tx.UpdateNodeConfig(ctx, map[string]string{ConfigKey: v}, nil)
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	for _, c := range []struct{ env, config, want string }{
		{"", "", ""},
		{"", "true", ""},
		{"", "false", "core.host_tuning=false"},
		{"", "bogus", ""},
		{"0", "", "BERTH_HOST_TUNING=0"},
		{"1", "false", "core.host_tuning=false"},
	} {
		t.Setenv(EnvOff, c.env)
		if c.env == "" {
			_ = os.Unsetenv(EnvOff)
		}

		set(c.config)
		if got := offBy(ctx, d, log); got != c.want {
			t.Errorf("env %q, config %q: offBy = %q, want %q", c.env, c.config, got, c.want)
		}
	}
}

// TestSettingsExist catches a misspelt key: each is a sysctl of this kernel (IPv6 ones
// aside, absent when IPv6 is off).
func TestSettingsExist(t *testing.T) {
	for _, s := range Settings {
		_, err := readInt(sysctlPath(ProcSys, s.Key))
		if err != nil && !(strings.HasPrefix(s.Key, "net.ipv6.") && errors.Is(err, os.ErrNotExist)) {
			t.Errorf("%s: %v", s.Key, err)
		}
	}
}
