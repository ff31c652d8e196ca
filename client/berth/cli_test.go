package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/client/internal/testdaemon"
	"github.com/berth-dev/berth/shared/api"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testdaemon.Cleanup()
	os.Exit(code)
}

// fakeDaemon runs berthd's real API over fake instances (see testdaemon).
func fakeDaemon(t *testing.T, cfg testdaemon.Config) *testdaemon.Daemon {
	t.Helper()

	if cfg.OpDelay == 0 {
		cfg.OpDelay = testdaemon.DefaultOpDelay
	}

	return testdaemon.Start(t, cfg)
}

func withStatus(status string, names ...string) []testdaemon.Instance {
	var out []testdaemon.Instance
	for _, n := range names {
		out = append(out, testdaemon.Instance{Name: n, Status: status})
	}

	return out
}

// instanceOf reads an instance through the API; false when it does not exist.
func instanceOf(t *testing.T, s *testdaemon.Daemon, name string) (api.InstanceFull, bool) {
	t.Helper()

	c, err := client.Connect(s.Socket)
	if err != nil {
		t.Fatal(err)
	}

	inst, _, err := c.GetInstanceFull(context.Background(), name)
	if api.StatusErrorCheck(err, 404) {
		return api.InstanceFull{}, false
	}

	if err != nil {
		t.Fatalf("GetInstance(%s): %v", name, err)
	}

	return *inst, true
}

// aliasTarget reads an image alias through the API.
func aliasTarget(t *testing.T, s *testdaemon.Daemon, name string) string {
	t.Helper()

	c, err := client.Connect(s.Socket)
	if err != nil {
		t.Fatal(err)
	}

	a, _, err := c.GetImageAlias(context.Background(), name)
	if err != nil {
		return ""
	}

	return a.Target
}

// runCLI runs berth with args against socket; it returns stdout, stderr and
// the exit code.
func runCLI(t *testing.T, socket string, args ...string) (string, string, int) {
	t.Helper()

	var out, errOut bytes.Buffer
	a := newApp(&out, &errOut)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// A fresh client configuration: the developer's own must not matter.
	a.confDir = t.TempDir()
	// The socket flag goes after the command's name, so that the root builds only that
	// command, as for a command line without flags before it.
	argv := []string{"--socket", socket}
	if len(args) > 0 {
		argv = append([]string{args[0], "--socket", socket}, args[1:]...)
	}

	code := run(ctx, argv, a)

	return out.String(), errOut.String(), code
}

// checkOneError asserts the one-line error contract.
func checkOneError(t *testing.T, stderr string, code int, want string) {
	t.Helper()

	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}

	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	if lines[0] != "Error: "+want {
		t.Errorf("stderr first line %q, want %q", lines[0], "Error: "+want)
	}

	if strings.Contains(stderr, "goroutine") || strings.Contains(stderr, "Flags:") {
		t.Errorf("stack trace or usage dump in stderr:\n%s", stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	noDaemon := filepath.Join(t.TempDir(), "none.socket")
	cases := [][]string{
		{"launch"},
		{"launch", "a", "b", "c"},
		{"init"},
		{"start"},
		{"stop"},
		{"delete"},
		{"info"},
		{"info", "a", "b"},
		{"image", "import"},
		{"image", "alias", "create", "x"},
		{"image", "build"},
		{"version", "x"},
		{"bogus"},
		{"image", "bogus"},
		{"list", "--bogus"},
		{"stop", "c1", "--timeout", "abc"},
	}

	for _, args := range cases {
		_, stderr, code := runCLI(t, noDaemon, args...)
		lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
		if code != 1 || len(lines) != 2 || !strings.HasPrefix(lines[0], "Error: ") {
			t.Errorf("%v: code %d stderr %q", args, code, stderr)
		}

		if strings.Contains(stderr, "connecting") {
			t.Errorf("%v: contacted the daemon for a usage error", args)
		}
	}
}

func TestNoDaemon(t *testing.T) {
	_, stderr, code := runCLI(t, filepath.Join(t.TempDir(), "none.socket"), "list")
	if code != 1 || !strings.Contains(stderr, "is it running?") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("code %d stderr %q", code, stderr)
	}
}

func TestLaunch(t *testing.T) {
	fp := strings.Repeat("ab", 32)
	s := fakeDaemon(t, testdaemon.Config{Images: []testdaemon.Image{{Fingerprint: fp, Aliases: []string{"debian/12"}}}})

	stdout, stderr, code := runCLI(t, s.Socket, "launch", "debian/12", "c1", "-c", "user.role=db", "-e")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}

	if stdout != "Creating c1\nStarting c1\n" {
		t.Errorf("stdout %q", stdout)
	}

	inst, ok := instanceOf(t, s, "c1")
	if !ok || inst.StatusCode != api.Running || inst.Config["user.role"] != "db" || !inst.Ephemeral {
		t.Errorf("instance %+v", inst)
	}

	// One request (instance_create_start): the alias for the server to resolve, start,
	// profiles null, maps {}; no start request of its own.
	creates := 0
	for _, r := range s.Requests() {
		if r.Method == "POST" && r.Path == "/1.0/instances" {
			creates++
			body := map[string]any{}
			_ = json.Unmarshal(r.Body, &body)
			src, _ := body["source"].(map[string]any)
			if body["profiles"] != nil || src["alias"] != "debian/12" || body["start"] != true {
				t.Errorf("create body %s", r.Body)
			}

			if _, ok := body["devices"].(map[string]any); !ok {
				t.Errorf("devices not an object: %s", r.Body)
			}
		}

		if r.Method == "PUT" && strings.HasSuffix(r.Path, "/state") {
			t.Errorf("a start request besides the create: %s %s", r.Path, r.Body)
		}
	}

	if creates != 1 {
		t.Errorf("%d create requests, want 1", creates)
	}

	// By fingerprint prefix: no such alias, so a request per step, as lxc sends them:
	// the full fingerprint and the type, then the start.
	before := len(s.Requests())
	stdout, stderr, code = runCLI(t, s.Socket, "launch", "abab", "c3")
	if code != 0 || stdout != "Creating c3\nStarting c3\n" {
		t.Fatalf("exit %d, stdout %q: %s", code, stdout, stderr)
	}

	if inst, _ := instanceOf(t, s, "c3"); inst.StatusCode != api.Running {
		t.Errorf("c3 is %s", inst.Status)
	}

	starts, byFingerprint := 0, 0
	for _, r := range s.Requests()[before:] {
		if r.Method == "POST" && r.Path == "/1.0/instances" && strings.Contains(string(r.Body), `"fingerprint":"`+fp+`"`) {
			byFingerprint++
			if !strings.Contains(string(r.Body), `"type":"container"`) {
				t.Errorf("create body %s", r.Body)
			}
		}

		if r.Method == "PUT" && strings.HasSuffix(r.Path, "/state") {
			starts++
			if !strings.Contains(string(r.Body), `"timeout":-1`) {
				t.Errorf("start body %s", r.Body)
			}
		}
	}

	if starts != 1 || byFingerprint != 1 {
		t.Errorf("a launch by fingerprint sent %d creates by the full fingerprint and %d starts, want 1 and 1", byFingerprint, starts)
	}

	// By fingerprint prefix with local:, no name, no profiles.
	stdout, stderr, code = runCLI(t, s.Socket, "init", "local:abab", "--no-profiles")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}

	if stdout != "Creating the instance\nInstance name is: happy-fox1\n" {
		t.Errorf("stdout %q", stdout)
	}

	inst, _ = instanceOf(t, s, "happy-fox1")
	if inst.StatusCode != api.Stopped || len(inst.Profiles) != 0 {
		t.Errorf("init instance %+v", inst)
	}
}

func TestLaunchErrors(t *testing.T) {
	s := fakeDaemon(t, testdaemon.Config{FailStart: "Failed to run: no init found",
		Images: []testdaemon.Image{{Fingerprint: strings.Repeat("ab", 32), Aliases: []string{"debian/12"}}}})

	_, stderr, code := runCLI(t, s.Socket, "launch", "nope")
	checkOneError(t, stderr, code, `Image "nope" not found`)

	_, stderr, code = runCLI(t, s.Socket, "launch", "debian/12", "-p", "x", "--no-profiles")
	checkOneError(t, stderr, code, "--no-profiles cannot be combined with --profile")

	_, stderr, code = runCLI(t, s.Socket, "launch", "debian/12", "-c", "novalue")
	checkOneError(t, stderr, code, `Bad key=value pair: "novalue"`)

	_, stderr, code = runCLI(t, s.Socket, "launch", "images:debian/12")
	checkOneError(t, stderr, code, `The remote "images" doesn't exist`)

	// A missing profile is the create's error, not a reason to try the image as a
	// fingerprint: no request per step follows.
	before := len(s.Requests())
	_, stderr, code = runCLI(t, s.Socket, "launch", "debian/12", "c4", "-p", "nope")
	if code == 0 || !strings.Contains(stderr, "nope") {
		t.Errorf("launch with a missing profile: exit %d, %s", code, stderr)
	}

	for _, r := range s.Requests()[before:] {
		if r.Method == "GET" && strings.HasPrefix(r.Path, "/1.0/images/") && !strings.HasPrefix(r.Path, "/1.0/images/aliases/") {
			t.Errorf("launch with a missing profile went on by fingerprint: %s %s", r.Method, r.Path)
		}
	}

	// A launch whose start fails leaves nothing: the name is free again.
	_, stderr, code = runCLI(t, s.Socket, "launch", "debian/12", "c2")
	checkOneError(t, stderr, code, "Failed to run: no init found (c2 was deleted again)")

	_, stderr, code = runCLI(t, s.Socket, "init", "debian/12", "c2")
	if code != 0 {
		t.Fatalf("init after the failed launch: %s", stderr)
	}

	_, stderr, code = runCLI(t, s.Socket, "init", "debian/12", "c2")
	checkOneError(t, stderr, code, `Instance "c2" already exists`)
}

func TestStateCommands(t *testing.T) {
	s := fakeDaemon(t, testdaemon.Config{Instances: withStatus("Stopped", "c1", "c2")})

	_, stderr, code := runCLI(t, s.Socket, "start", "c1", "c2")
	if code != 0 {
		t.Fatalf("start: %s", stderr)
	}

	_, stderr, code = runCLI(t, s.Socket, "start", "c1")
	checkOneError(t, stderr, code, "The instance is already running")

	_, stderr, code = runCLI(t, s.Socket, "pause", "c1")
	if inst, _ := instanceOf(t, s, "c1"); code != 0 || inst.StatusCode != api.Frozen {
		t.Fatalf("pause: %d %s %v", code, stderr, inst.Status)
	}

	// start on a frozen instance unfreezes it, like lxc.
	_, _, code = runCLI(t, s.Socket, "start", "c1")
	if inst, _ := instanceOf(t, s, "c1"); code != 0 || inst.StatusCode != api.Running {
		t.Fatalf("start frozen: %d %v", code, inst.Status)
	}

	_, stderr, code = runCLI(t, s.Socket, "stop", "c1", "c2", "missing", "-f", "--timeout", "5")
	checkOneError(t, stderr, code, `Missing: instance "missing" not found`)

	if inst, _ := instanceOf(t, s, "c2"); inst.StatusCode != api.Stopped {
		t.Errorf("c2 not stopped after a partial failure: %v", inst.Status)
	}

	found := false
	for _, r := range s.Requests() {
		if r.Path == "/1.0/instances/c2/state" && r.Method == "PUT" {
			found = strings.Contains(string(r.Body), `"action":"stop","timeout":5,"force":true`)
		}
	}

	if !found {
		t.Error("stop request lacks force/timeout")
	}

	_, _, code = runCLI(t, s.Socket, "stop", "c2")
	if code != 1 {
		t.Error("stopping a stopped instance succeeded")
	}
}

// TestStartAsksOnce: where the remote's socket is berthd's, start asks for the
// start straight away, without reading the instance first (state.go says why); where it
// is another daemon's (this fake one, as an LXD would be), it reads the instance first.
func TestStartAsksOnce(t *testing.T) {
	for _, berthd := range []bool{true, false} {
		s := fakeDaemon(t, testdaemon.Config{Instances: withStatus("Stopped", "c1")})

		// The fake daemon is this test's process: the real check says it is not berthd.
		saved := servedByBerthd
		if berthd {
			servedByBerthd = func(*client.Client) bool { return true }
		}

		_, stderr, code := runCLI(t, s.Socket, "start", "c1")
		servedByBerthd = saved

		requests := s.Requests() // before instanceOf's own read
		if inst, _ := instanceOf(t, s, "c1"); code != 0 || inst.StatusCode != api.Running {
			t.Fatalf("start: %d %s %v", code, stderr, inst.Status)
		}

		puts, gets := 0, 0
		for _, r := range requests {
			if r.Method == "GET" && strings.HasPrefix(r.Path, "/1.0/instances/c1") {
				gets++
			}

			if r.Method == "PUT" && r.Path == "/1.0/instances/c1/state" {
				puts++
			}
		}

		if want := map[bool]int{true: 0, false: 1}[berthd]; gets != want || puts != 1 {
			t.Errorf("served by berthd %v: %d reads of the instance and %d state changes, want %d and 1", berthd, gets, puts, want)
		}
	}
}

func TestDelete(t *testing.T) {
	s := fakeDaemon(t, testdaemon.Config{Instances: withStatus("Running", "c1")})

	_, stderr, code := runCLI(t, s.Socket, "delete", "c1")
	checkOneError(t, stderr, code, "The instance is currently running, stop it first or pass --force")

	if _, ok := instanceOf(t, s, "c1"); !ok {
		t.Fatal("running instance deleted without --force")
	}

	_, stderr, code = runCLI(t, s.Socket, "delete", "-f", "c1")
	if code != 0 {
		t.Fatalf("delete -f: %s", stderr)
	}

	if _, ok := instanceOf(t, s, "c1"); ok {
		t.Error("instance still there")
	}

	_, stderr, code = runCLI(t, s.Socket, "delete", "c1")
	checkOneError(t, stderr, code, `Instance "c1" not found`)
}

func TestList(t *testing.T) {
	s := fakeDaemon(t, testdaemon.Config{Instances: append(withStatus("Running", "web"), withStatus("Stopped", "db")...)})

	stdout, stderr, code := runCLI(t, s.Socket, "list")
	if code != 0 {
		t.Fatal(stderr)
	}

	want := `+------+---------+-----------------+----------------+-----------+-----------+
| NAME |  STATE  |      IPV4       |      IPV6      |   TYPE    | SNAPSHOTS |
+------+---------+-----------------+----------------+-----------+-----------+
| db   | STOPPED |                 |                | CONTAINER | 0         |
+------+---------+-----------------+----------------+-----------+-----------+
| web  | RUNNING | 10.0.3.5 (eth0) | fd42::5 (eth0) | CONTAINER | 0         |
+------+---------+-----------------+----------------+-----------+-----------+
`
	if stdout != want {
		t.Errorf("list:\n%s", stdout)
	}

	stdout, _, _ = runCLI(t, s.Socket, "list", "status=running", "--format", "csv", "-c", "ns4")
	if stdout != "web,RUNNING,10.0.3.5 (eth0)\n" {
		t.Errorf("csv %q", stdout)
	}

	stdout, _, _ = runCLI(t, s.Socket, "list", "--format", "json")
	got := []api.InstanceFull{}
	err := json.Unmarshal([]byte(stdout), &got)
	if err != nil || len(got) != 2 || got[1].State == nil || got[1].State.Pid != 4242 {
		t.Errorf("json %v: %s", err, stdout)
	}

	stdout, _, _ = runCLI(t, s.Socket, "list", "-f", "yaml", "db")
	if !strings.Contains(stdout, "name: db") || strings.Contains(stdout, "name: web") {
		t.Errorf("yaml:\n%s", stdout)
	}

	_, stderr, code = runCLI(t, s.Socket, "list", "--format", "xml")
	checkOneError(t, stderr, code, `Invalid format "xml" (want one of csv, json, table, yaml, compact)`)

	_, stderr, code = runCLI(t, s.Socket, "list", "-c", "nz")
	checkOneError(t, stderr, code, `Unknown column shorthand char 'z' in "nz"`)
}

func TestInfo(t *testing.T) {
	s := fakeDaemon(t, testdaemon.Config{Instances: withStatus("Running", "c1")})

	stdout, stderr, code := runCLI(t, s.Socket, "info", "c1")
	if code != 0 {
		t.Fatal(stderr)
	}

	for _, want := range []string{"Name: c1\n", "Status: RUNNING\n", "PID: 4242\n", "Host interface: vethc1\n", "inet:  10.0.3.5/24 (global)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("info lacks %q:\n%s", want, stdout)
		}
	}

	_, stderr, code = runCLI(t, s.Socket, "info", "nope")
	checkOneError(t, stderr, code, `Instance "nope" not found`)
}

// writeTarball writes an image tarball holding content.
func writeTarball(t *testing.T, content string) (string, string) {
	t.Helper()

	return testdaemon.ImageTarball(t, []byte(content))
}

func TestImageCommands(t *testing.T) {
	old := strings.Repeat("0f", 32)
	s := fakeDaemon(t, testdaemon.Config{Images: []testdaemon.Image{{Fingerprint: old, Aliases: []string{"web"}}}})

	path, fp := writeTarball(t, strings.Repeat("x", 300000))

	stdout, stderr, code := runCLI(t, s.Socket, "image", "import", path, "--alias", "web", "--alias", "debian/12")
	if code != 0 {
		t.Fatal(stderr)
	}

	if !strings.HasSuffix(stdout, "Image imported with fingerprint: "+fp+"\n") || !strings.Contains(stdout, "Transferring image: ") {
		t.Errorf("stdout %q", stdout)
	}

	for _, al := range []string{"web", "debian/12"} {
		if target := aliasTarget(t, s, al); target != fp {
			t.Errorf("alias %s -> %s, want %s", al, target, fp)
		}
	}

	stdout, _, _ = runCLI(t, s.Socket, "image", "list", "-f", "csv")
	if !strings.Contains(stdout, "web (1 more),"+fp[:12]+",no,") {
		t.Errorf("image list:\n%s", stdout)
	}

	stdout, _, _ = runCLI(t, s.Socket, "image", "alias", "list")
	if !strings.Contains(stdout, "| debian/12 | "+fp[:12]+" | CONTAINER |") {
		t.Errorf("alias list:\n%s", stdout)
	}

	_, stderr, code = runCLI(t, s.Socket, "image", "alias", "create", "old", old[:6])
	if code != 0 {
		t.Fatal(stderr)
	}

	_, stderr, code = runCLI(t, s.Socket, "image", "alias", "create", "old", old)
	checkOneError(t, stderr, code, `Image alias "old" already exists`)

	_, stderr, code = runCLI(t, s.Socket, "image", "alias", "delete", "old")
	if code != 0 {
		t.Fatal(stderr)
	}

	_, stderr, code = runCLI(t, s.Socket, "image", "delete", "debian/12", old[:8])
	if code != 0 {
		t.Fatal(stderr)
	}

	stdout, _, _ = runCLI(t, s.Socket, "image", "list", "-f", "json")
	if strings.TrimSpace(stdout) != "[]" {
		t.Errorf("images left: %s", stdout)
	}

	_, stderr, code = runCLI(t, s.Socket, "image", "delete", "debian/12")
	checkOneError(t, stderr, code, `Image "debian/12" not found`)
}

func TestImageBuild(t *testing.T) {
	path, fp := writeTarball(t, "built rootfs")
	other := strings.Repeat("1e", 32)
	s := fakeDaemon(t, testdaemon.Config{Images: []testdaemon.Image{{Fingerprint: other, Aliases: []string{"debian/12"}}}})

	builds := 0
	imageBuilder = func(_ context.Context, name, cacheDir string, progress func(string, int)) (string, error) {
		builds++
		if name != "debian/12" || cacheDir != defaultImageCache {
			t.Errorf("build(%q, %q)", name, cacheDir)
		}

		progress("debootstrap", 10)
		progress("debootstrap", 50)
		progress("packing", -1)

		return path, nil
	}
	t.Cleanup(func() { imageBuilder = buildImage })

	stdout, stderr, code := runCLI(t, s.Socket, "image", "build", "debian/12")
	if code != 0 {
		t.Fatal(stderr)
	}

	if !strings.Contains(stdout, "Building debian/12: debootstrap 10%\n") || !strings.Contains(stdout, "Building debian/12: packing\n") ||
		!strings.HasSuffix(stdout, "Image imported with fingerprint: "+fp+"\n") {
		t.Errorf("stdout %q", stdout)
	}

	// The alias pointing elsewhere now points at the new image.
	if target := aliasTarget(t, s, "debian/12"); target != fp {
		t.Errorf("alias -> %s", target)
	}

	// A second build of the same tarball uploads nothing.
	before := len(s.Requests())
	_, stderr, code = runCLI(t, s.Socket, "image", "build", "debian/12", "--alias", "d12")
	if code != 0 {
		t.Fatal(stderr)
	}

	for _, r := range s.Requests()[before:] {
		if r.Method == "POST" && r.Path == "/1.0/images" {
			t.Error("re-uploaded an image the server already has")
		}
	}

	if target := aliasTarget(t, s, "d12"); target != fp || builds != 2 {
		t.Errorf("d12 -> %s, builds %d", target, builds)
	}
}

func TestOtherLists(t *testing.T) {
	s := fakeDaemon(t, testdaemon.Config{})

	stdout, _, code := runCLI(t, s.Socket, "network", "list")
	if code != 0 || !strings.Contains(stdout, "| berthbr0 | bridge | YES     | 10.0.3.1/24 | none |") || strings.Contains(stdout, "| lo ") {
		t.Errorf("network list:\n%s", stdout)
	}

	stdout, _, code = runCLI(t, s.Socket, "storage", "list")
	if code != 0 || !strings.Contains(stdout, "| default | dir    | /") || !strings.Contains(stdout, "/storage-pools/default |") {
		t.Errorf("storage list:\n%s", stdout)
	}

	stdout, _, code = runCLI(t, s.Socket, "profile", "list")
	if code != 0 || !strings.Contains(stdout, "| default | Default Berth profile | 0       |") {
		t.Errorf("profile list:\n%s", stdout)
	}

	stdout, _, code = runCLI(t, s.Socket, "profile", "show", "default")
	if code != 0 || !strings.Contains(stdout, "name: default") || !strings.Contains(stdout, "description: Default Berth profile") {
		t.Errorf("profile show:\n%s", stdout)
	}

	stdout, _, code = runCLI(t, s.Socket, "version")
	if code != 0 || stdout != "Client version: 0.1.0\nServer version: 0.1.0\n" {
		t.Errorf("version %q", stdout)
	}
}

// TestLaunchLosesName: of two launches of one name at once, both accepted, the one whose
// create finds the name taken fails with that, and leaves the other's instance alone: its
// operation does not say it made the instance, so no delete is tried.
func TestLaunchLosesName(t *testing.T) {
	s := fakeDaemon(t, testdaemon.Config{OpDelay: time.Second,
		Images: []testdaemon.Image{{Fingerprint: strings.Repeat("ab", 32), Aliases: []string{"debian/12"}}}})

	var stderrs [2]string
	var codes [2]int
	var wg sync.WaitGroup
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, stderrs[i], codes[i] = runCLI(t, s.Socket, "launch", "debian/12", "c9")
		}()
	}

	wg.Wait()

	lost := 0
	for i, code := range codes {
		if code == 0 {
			continue
		}

		lost++
		checkOneError(t, stderrs[i], code, `Instance "c9" already exists`)
	}

	if lost != 1 {
		t.Errorf("%d launches failed, want 1: %q", lost, stderrs)
	}

	if inst, ok := instanceOf(t, s, "c9"); !ok || inst.StatusCode != api.Running {
		t.Errorf("c9: %+v", inst)
	}

	// Both creates were accepted (each waited for its operation): the loser failed in its
	// operation, not with its request.
	waited := map[string]bool{}
	for _, r := range s.Requests() {
		if strings.HasPrefix(r.Path, "/1.0/operations/") && strings.Contains(r.Path, "/wait") {
			waited[strings.Split(r.Path, "/")[3]] = true
		}
	}

	if len(waited) != 2 {
		t.Errorf("%d create operations waited for, want 2: the test did not race the creates", len(waited))
	}
}
