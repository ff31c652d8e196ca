package integration

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/test/testutil"
)

// TestLXDParity calls every operation of LXD 5.0.2's API description against a real
// berthd. Each must be served (any answer but 404 "unknown API path", 405 or 501) or
// answer 501 saying Berth does not implement it; the served count must not go below the
// floor recorded in parity-floor. With -update it also writes doc/lxd-compat.md and
// raises the floor: the table in the repository is what this test measured.
//
//	go test -count=1 -run '^TestLXDParity$' ./test/integration -update   (make update-compat)
func TestLXDParity(t *testing.T) {
	parallel(t)
	spec := loadLXDSpec(t)
	d := startDaemon(t)
	fx := parityFixtures(t, d)

	var rows []parityRow
	served := 0
	for _, op := range spec {
		row := d.probe(t, op, fx)
		rows = append(rows, row)
		if row.Served {
			served++
		}
	}

	t.Logf("LXD 5.0.2 API parity: %d of %d operations served, %d answer 501", served, len(rows), len(rows)-served)

	floorPath := filepath.Join(repoRoot(), "test", "integration", "testdata", "parity-floor")
	floor := readFloor(t, floorPath)
	if served < floor {
		t.Errorf("parity went down: %d operations served, the floor is %d", served, floor)
	}

	ext := d.checkExtensions(t)
	if !*updateCompat || t.Failed() {
		return
	}

	err := os.WriteFile(filepath.Join(repoRoot(), "doc", "lxd-compat.md"), []byte(compatDoc(rows, served, ext)), 0o644)
	if err != nil {
		t.Fatal(err)
	}

	if served > floor {
		err = os.WriteFile(floorPath, []byte(strconv.Itoa(served)+"\n"), 0o644)
		if err != nil {
			t.Fatal(err)
		}
	}
}

var updateCompat = flag.Bool("update", false, "TestLXDParity: rewrite doc/lxd-compat.md and raise the parity floor")

// lxdSpecName is LXD's doc/rest-api.yaml at tag lxd-5.0.2, kept unchanged beside the
// repository (../shared/data), where CI has it too.
const lxdSpecName = "lxd-5.0.2-rest-api.yaml"

// lxdOp is one operation of LXD's API: a method on a path as the description spells it
// (with its query variant, as in /1.0/images?public).
type lxdOp struct {
	Method string
	Path   string
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// lxdSpecPath finds ../shared/data/<spec> from the repository root, or from the first of
// its parents that has it (a git worktree lives below the main checkout's parent).
func lxdSpecPath() (string, error) {
	for dir := filepath.Dir(repoRoot()); ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, "shared", "data", lxdSpecName)
		_, err := os.Stat(p)
		if err == nil {
			return p, nil
		}

		if dir == filepath.Dir(dir) {
			return "", fmt.Errorf("%s not found in ../shared/data from %s or its parents", lxdSpecName, repoRoot())
		}
	}
}

// loadLXDSpec returns the operations of LXD's description, sorted by path then method.
func loadLXDSpec(t *testing.T) []lxdOp {
	t.Helper()
	p, err := lxdSpecPath()
	if err != nil {
		testutil.SkipOrFail(t, "%v", err)
	}

	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}

	var doc struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}

	err = yaml.Unmarshal(data, &doc)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}

	var ops []lxdOp
	for path, methods := range doc.Paths {
		for m := range methods {
			m = strings.ToUpper(m)
			if slices.Contains(parityMethods, m) {
				ops = append(ops, lxdOp{Method: m, Path: path})
			}
		}
	}

	sort.Slice(ops, func(i, j int) bool {
		if ops[i].Path != ops[j].Path {
			return ops[i].Path < ops[j].Path
		}

		return slices.Index(parityMethods, ops[i].Method) < slices.Index(parityMethods, ops[j].Method)
	})

	if len(ops) < 200 {
		t.Fatalf("%s has only %d operations: not LXD 5.0.2's API description", p, len(ops))
	}

	return ops
}

var parityMethods = []string{"GET", "PUT", "PATCH", "POST", "DELETE"}

// fixtures name objects the test made, so that served GETs can answer 200.
type fixtures map[string]string

// missing names objects that do not exist: mutating operations get them, so that probing
// changes nothing (a served one answers 404 or 400).
const missing = "parity-missing"

func parityFixtures(t *testing.T, d *daemon) fixtures {
	t.Helper()
	ctx := context.Background()
	op, err := d.c.CreateInstance(ctx, api.InstancesPost{Name: "p1", Source: api.InstanceSource{Type: "image", Alias: "debian/12"}})
	if err == nil {
		err = op.Wait(ctx)
	}

	if err != nil {
		t.Fatalf("creating p1: %v", err)
	}

	snap, err := d.c.CreateInstanceSnapshot(ctx, "p1", api.InstanceSnapshotsPost{Name: "s1"})
	if err == nil {
		err = snap.Wait(ctx)
	}

	if err != nil {
		t.Fatalf("snapshotting p1: %v", err)
	}

	fx := fixtures{"instance": "p1", "snapshot": "s1", "operation": op.ID, "profile": "default", "alias": "debian/12", "logfile": "lxc.log"}
	var images, networks, pools []string
	for path, out := range map[string]*[]string{"/1.0/images": &images, "/1.0/networks": &networks, "/1.0/storage-pools": &pools} {
		code, env := d.raw("GET", path, nil)
		if code != http.StatusOK || json.Unmarshal(env.Metadata, out) != nil || len(*out) == 0 {
			t.Fatalf("GET %s: %d %s", path, code, env.Metadata)
		}
	}

	fx["image"] = filepath.Base(images[0])
	fx["network"] = filepath.Base(networks[0])
	fx["pool"] = filepath.Base(pools[0])
	return fx
}

var pathVarRE = regexp.MustCompile(`\{([^}]*)\}`)

// target turns an operation into a request path: GETs name the fixtures, everything else
// names objects that do not exist.
func (fx fixtures) target(op lxdOp) string {
	path, query, _ := strings.Cut(op.Path, "?")
	read := op.Method == http.MethodGet
	path = pathVarRE.ReplaceAllStringFunc(path, func(v string) string {
		name := missing
		kind := ""
		switch {
		case v == "{name}" && strings.HasPrefix(path, "/1.0/instances/"):
			kind = "instance"
		case v == "{name}" && strings.HasPrefix(path, "/1.0/profiles/"):
			kind = "profile"
		case v == "{name}" && strings.HasPrefix(path, "/1.0/images/aliases/"):
			kind = "alias"
		case v == "{name}" && strings.HasPrefix(path, "/1.0/networks/"), v == "{networkName}":
			kind = "network"
		case v == "{name}" && strings.HasPrefix(path, "/1.0/storage-pools/"):
			kind = "pool"
		case v == "{fingerprint}" && strings.HasPrefix(path, "/1.0/images/"):
			kind = "image"
		case v == "{snapshot}" && strings.HasPrefix(path, "/1.0/instances/"):
			kind = "snapshot"
		case v == "{filename}":
			kind = "logfile"
		case v == "{id}":
			kind = "operation"
		case v == "{type}":
			return "custom"
		case v == "{listenAddress}":
			return "192.0.2.1"
		}

		if read && fx[kind] != "" {
			name = fx[kind]
		}

		return url.PathEscape(name)
	})

	if query != "" {
		path += "?" + query
	}

	return path
}

// parityRow is what one operation answered.
type parityRow struct {
	lxdOp
	Served bool
	Note   string // for 501: the work that brings it, from berthd's message
}

var noteRE = regexp.MustCompile(`is not implemented in Berth(?: \((.*)\))?$`)

// probe sends op once, without a body, and classifies the answer.
func (d *daemon) probe(t *testing.T, op lxdOp, fx fixtures) parityRow {
	t.Helper()
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(d.dir, "unix.socket"))
	}}}

	target := fx.target(op)
	req, err := http.NewRequest(op.Method, "http://unix.socket"+target, nil)
	if err != nil {
		t.Fatal(err)
	}

	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", op.Method, target, err)
	}

	defer resp.Body.Close()
	var env api.Response
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&env)
	}

	row := parityRow{lxdOp: op}
	switch {
	case resp.StatusCode == http.StatusNotImplemented:
		m := noteRE.FindStringSubmatch(env.Error)
		if env.Type != api.ErrorResponse || env.ErrorCode != http.StatusNotImplemented || m == nil {
			t.Errorf("%s %s: 501 without an LXD error saying Berth does not implement it: %+v", op.Method, target, env)
		}

		if m != nil {
			row.Note = m[1]
		}
	case resp.StatusCode == http.StatusMethodNotAllowed,
		resp.StatusCode == http.StatusNotFound && strings.Contains(env.Error, "unknown API path"):
		t.Errorf("%s %s (%s %s of LXD's API): %d %s; want it served or 501", op.Method, target, op.Method, op.Path, resp.StatusCode, env.Error)
	default:
		row.Served = true
	}

	return row
}

func readFloor(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the parity floor: %v", err)
	}

	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("the parity floor %s: %v", path, err)
	}

	return n
}
