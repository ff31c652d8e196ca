// Package boundary holds the test that keeps Berth's package boundaries: which package may
// use which third-party module, which Berth packages may import which, and that the client
// never links daemon code. It reads `go list -json ./...` of the whole module; imports of
// _test.go files are not checked (tests drive the real thing from outside: integration
// tests use netlink, nftables and pty to attack and inspect containers).
package boundary

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/build"
	"io"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/berth-dev/berth/"

// owners lists, for each third-party module whose use is restricted, the only packages
// (relative to the module) that may import it. Modules not listed here (x/sys, yaml,
// uuid) are ordinary helpers anyone may use.
var owners = map[string][]string{
	"github.com/gorilla/mux":         {"lxd"}, // the router (lxd/api.go)
	"github.com/mattn/go-sqlite3":    {"lxd/db"},
	"github.com/canonical/go-dqlite": {"lxd/cluster/gateway"}, // cgo, libdqlite (issue 16)
	"github.com/vishvananda/netlink": {"lxd/ip"},
	"github.com/vishvananda/netns":   {"lxd/ip"},
	"github.com/google/nftables":     {"lxd/firewall"},
	"github.com/godbus/dbus/v5":      {"lxd/cgroup"},
	"github.com/creack/pty":          {"lxd/container", "client/berth"},
	"github.com/spf13/cobra":         {"client/berth"},
	"github.com/spf13/pflag":         {"client/berth"},
	"github.com/flosch/pongo2/v6":    {"lxd/images"}, // the template code, lxd/images/templates.go
	"github.com/gorilla/websocket":   {"shared/ws", "lxd/events"},
	"golang.org/x/term":              {"client/berth", "shared/termios"},
	"github.com/klauspost/compress":  {"lxd/images", "lxd/compressor", "shared/imagebuild"}, // gzip, the CLI's image builder's too
	// The CLI links neither zstd nor xz: their initialisation cost every command about a
	// millisecond before main (lxd/compressor's doc).
	"github.com/klauspost/compress/zstd":   {"lxd/images", "lxd/compressor"},
	"github.com/ulikunitz/xz":              {"lxd/images", "lxd/compressor"},
	"github.com/mdlayher/netlink":          {"lxd/firewall"},
	"github.com/inconshreveable/mousetrap": {"client/berth"},
	"google.golang.org/protobuf":           {"lxd/migration"}, // migrate.proto's generated code
}

// ranks layers the daemon's packages: a package may import Berth packages of a lower rank
// only. Rank 0 is code shared with the client (shared/..., and the images and templates
// data packages); the daemon's main package is the top. A new package must be given a
// rank here: where it sits is a decision, not an accident.
var ranks = map[string]int{
	"shared":    0, // shared/... (prefix)
	"images":    0,
	"templates": 0,
	// The Go client links no daemon code; the daemon uses it to download images from
	// other servers (issue 15).
	"client": 0,
	// Leaves: host facts and single mechanisms.
	"lxd/sys": 1, "lxd/idmap": 1, "lxd/ip": 1, "lxd/firewall": 1, "lxd/proxy": 1,
	"lxd/fileio": 1, "lxd/confine": 1, "lxd/db/schema": 1, "lxd/events": 1, "lxd/etag": 1,
	"lxd/listener": 1, "lxd/container/monitorsig": 1, "lxd/compressor": 1,
	"lxd/cluster/gateway": 1, // the dqlite node and driver; lxd/db gets only its *sql.DB
	"lxd/gcfloor":         1, // the daemon's collector tuning
	"lxd/parallel":        1, // a request's workers, their panics raised on it
	// Subsystems built on leaves, and the code that runs in a container's namespaces.
	"lxd/setup": 2, "lxd/nsexec": 2, "lxd/nsexec/initns": 1,
	"lxd/berth-init": 3, // a container's init until systemd: setup.InitMain, nothing else
	"lxd/db":         2, "lxd/cgroup": 2, "lxd/operations": 2, "lxd/images": 2,
	"lxd/storage": 2, "lxd/network": 2, "lxd/resources": 2, "lxd/migration": 2,
	// The runtime, the devices and snapshots (below the instance life cycle that calls
	// them) and the API plumbing.
	"lxd/container": 3, "lxd/lxcfs": 3, "lxd/device": 3, "lxd/snapshot": 3, "lxd/response": 3, "lxd/imagestore": 3,
	"lxd/metrics": 3, "lxd/trust": 3, "lxd/tuning": 3, "lxd/warnings": 3, "lxd/projects": 3,
	"lxd/instance": 4,
	// The membership core (issue 16): over the database, the listener and the dqlite node.
	"lxd/cluster": 4,
	// Cluster plumbing between members (issue 16): requests, events and image files.
	"lxd/cluster/forward": 4,
	// Services over instances: profiles re-applied, networks and their users, backups,
	// exec and file sessions in running containers.
	"lxd/profiles": 5, "lxd/networks": 5, "lxd/pools": 5, "lxd/backup": 5, "lxd/session": 5,
	"lxd/volumes": 5,
	"lxd":         6,
}

// onlyStdlib lists packages that may import nothing but the standard library and these:
// they run inside a new container's namespaces or in a process joined to them, where
// less code is less to trust.
var onlyStdlib = map[string][]string{
	"lxd/setup":         {"golang.org/x/sys/unix", module + "shared/api", module + "lxd/confine"},
	"lxd/berth-init":    {module + "lxd/setup", module + "lxd/nsexec/initns"},
	"lxd/nsexec/initns": {},
	"lxd/nsexec":        {"golang.org/x/sys/unix", module + "shared/api", module + "lxd/confine", module + "lxd/fileio"},
	"lxd/confine":       {"golang.org/x/sys/unix", "golang.org/x/net/bpf"},
	"lxd/fileio":        {"golang.org/x/sys/unix", module + "shared/api"},
}

// knownExceptions are violations today's tree has, each with the work that removes it.
// The list must only shrink: an entry that no longer matches fails the test too.
var knownExceptions = map[string]string{}

// forbidden are imports the ranks allow but the design does not.
var forbidden = map[string][]string{
	"lxd/instance": {"lxd/response"},
}

type pkg struct {
	ImportPath string
	Imports    []string
	Standard   bool
}

func TestBoundaries(t *testing.T) {
	for _, p := range check(listPackages(t), knownExceptions) {
		t.Error(p)
	}
}

// TestBoundariesCatch shows that check reports each kind of violation.
func TestBoundariesCatch(t *testing.T) {
	bad := []pkg{
		{ImportPath: module + "lxd/storage", Imports: []string{"github.com/gorilla/mux"}},
		{ImportPath: module + "lxd/setup", Imports: []string{"github.com/google/uuid"}},
		{ImportPath: module + "lxd/nsexec", Imports: []string{module + "shared/validate"}},
		{ImportPath: module + "shared/api", Imports: []string{module + "lxd/db"}},
		{ImportPath: module + "client", Imports: []string{module + "lxd/instance"}},
		{ImportPath: module + "lxd/db", Imports: []string{module + "lxd/instance"}},
		{ImportPath: module + "lxd/ip", Imports: []string{module + "lxd/firewall"}},
		{ImportPath: module + "lxd/newthing", Imports: []string{module + "lxd/sys"}},
		{ImportPath: module + "lxd/instance", Imports: []string{module + "lxd/response", module + "test/integration"}},
		{ImportPath: module + "shared/imagebuild", Imports: []string{"github.com/klauspost/compress/gzip", "github.com/klauspost/compress/zstd"}},
	}

	got := check(bad, map[string]string{"lxd/sys imports x": "stale"})
	for _, want := range []string{
		"lxd/storage imports github.com/gorilla/mux: github.com/gorilla/mux belongs to lxd",
		"lxd/setup imports github.com/google/uuid: it may import only",
		"lxd/nsexec imports shared/validate: it may import only",
		"shared/api imports lxd/db: shared/ is used by",
		"client imports lxd/instance: the client never links daemon code",
		"lxd/db imports lxd/instance: a package of rank 2 imports one of rank 4",
		"lxd/ip imports lxd/firewall: a package of rank 1 imports one of rank 1",
		"lxd/newthing has no rank",
		"lxd/instance imports lxd/response: forbidden by design",
		"lxd/instance imports test/integration: test code",
		`known exception "lxd/sys imports x" no longer happens`,
		"shared/imagebuild imports github.com/klauspost/compress/zstd: github.com/klauspost/compress/zstd belongs to lxd/images, lxd/compressor",
	} {
		found := false
		for _, g := range got {
			found = found || strings.HasPrefix(g, want)
		}

		if !found {
			t.Errorf("not reported: %s\ngot: %s", want, strings.Join(got, "\n"))
		}
	}
}

// check returns one line per violation in pkgs that exceptions does not excuse, and one
// per exception that no longer happens.
func check(pkgs []pkg, exceptions map[string]string) []string {
	var problems []string
	seen := map[string]bool{}
	report := func(key, why string) {
		seen[key] = true
		if _, ok := exceptions[key]; !ok {
			problems = append(problems, key+": "+why)
		}
	}

	for _, p := range pkgs {
		rel := strings.TrimPrefix(p.ImportPath, module)
		if rel == p.ImportPath {
			rel = strings.TrimPrefix(p.ImportPath, strings.TrimSuffix(module, "/"))
		}

		for _, imp := range p.Imports {
			if imp == "C" || isStdlib(imp) {
				continue
			}

			key := rel + " imports " + strings.TrimPrefix(imp, module)

			if allowed, ok := onlyStdlib[rel]; ok && !contains(allowed, imp) {
				report(key, "it may import only the standard library, x/sys and shared/api (it runs inside a container's namespaces)")
			}

			if !strings.HasPrefix(imp, module) {
				mod, owned := ownerModule(imp)
				if owned && !contains(owners[mod], rel) {
					report(key, fmt.Sprintf("%s belongs to %s", mod, strings.Join(owners[mod], ", ")))
				}

				continue
			}

			dep := strings.TrimPrefix(imp, module)
			switch {
			case strings.HasPrefix(dep, "test/") && !strings.HasPrefix(rel, "test/"):
				report(key, "test code is not for the product")
			case under(rel, "shared") && (under(dep, "lxd") || under(dep, "client")):
				report(key, "shared/ is used by the daemon and the client, so it imports neither")
			case under(rel, "client") && under(dep, "lxd"):
				report(key, "the client never links daemon code; shared types live in shared/")
			case under(rel, "lxd") || under(rel, "shared"):
				r, ok := rank(rel)
				d, dok := rank(dep)
				switch {
				case !ok:
					report(rel+" has no rank", "give it one in ranks (test/boundary)")
				case !dok:
					report(dep+" has no rank", "give it one in ranks (test/boundary)")
				case d >= r && !under(dep, rel) && r > 0:
					report(key, fmt.Sprintf("a package of rank %d imports one of rank %d; lower layers never import higher ones", r, d))
				case contains(forbidden[rel], dep):
					report(key, "forbidden by design")
				}
			}
		}
	}

	for key, why := range exceptions {
		if !seen[key] {
			problems = append(problems, fmt.Sprintf("known exception %q no longer happens (%s): remove it from knownExceptions", key, why))
		}
	}

	sort.Strings(problems)
	return problems
}

// listPackages runs go list over the module (from its root, two levels up).
func listPackages(t *testing.T) []pkg {
	t.Helper()

	// The go on PATH, else the one of the toolchain that built this test.
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(build.Default.GOROOT, "bin", "go")
	}

	cmd := exec.Command(gobin, "list", "-e", "-json=ImportPath,Imports,Standard", "./...")
	cmd.Dir = "../.."

	var stderr bytes.Buffer
	cmd.Stderr = &stderr

	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}

	var pkgs []pkg

	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg

		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			break
		}

		if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}

		pkgs = append(pkgs, p)
	}

	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages: not the module root?", len(pkgs))
	}

	return pkgs
}

// isStdlib reports whether an import path is the standard library's (no dot in its
// first element).
func isStdlib(imp string) bool {
	first, _, _ := strings.Cut(imp, "/")
	return !strings.Contains(first, ".")
}

// ownerModule returns the restricted module imp belongs to, if any.
// ownerModule is the longest key of owners that imp is or lies under: a package of a
// module may have owners of its own (klauspost/compress/zstd).
func ownerModule(imp string) (string, bool) {
	best := ""
	for mod := range owners {
		if (imp == mod || strings.HasPrefix(imp, mod+"/")) && len(mod) > len(best) {
			best = mod
		}
	}

	return best, best != ""
}

// rank returns the layer of a Berth package: its own entry, else that of its closest
// listed parent for shared/... .
func rank(rel string) (int, bool) {
	r, ok := ranks[rel]
	if ok {
		return r, true
	}

	if under(rel, "shared") {
		return ranks["shared"], true
	}

	return 0, false
}

func under(rel, dir string) bool { return rel == dir || strings.HasPrefix(rel, dir+"/") }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}

	return false
}
