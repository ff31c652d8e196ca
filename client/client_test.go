package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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

// start runs berthd's real API over fake instances (see testdaemon).
func start(t *testing.T, cfg testdaemon.Config) *testdaemon.Daemon {
	t.Helper()

	if cfg.OpDelay == 0 {
		cfg.OpDelay = testdaemon.DefaultOpDelay
	}

	return testdaemon.Start(t, cfg)
}

func running(names ...string) []testdaemon.Instance {
	var out []testdaemon.Instance
	for _, n := range names {
		out = append(out, testdaemon.Instance{Name: n, Status: "Running"})
	}

	return out
}

func connect(t *testing.T, s *testdaemon.Daemon) *client.Client {
	t.Helper()

	c, err := client.Connect(s.Socket)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}

	return c
}

// instanceStatus is the status of an instance as the daemon reports it
// (0 when it does not exist).
func instanceStatus(t *testing.T, c *client.Client, name string) api.StatusCode {
	t.Helper()

	inst, _, err := c.GetInstance(testCtx(t), name)
	if api.StatusErrorCheck(err, http.StatusNotFound) {
		return 0
	}

	if err != nil {
		t.Fatalf("GetInstance(%s): %v", name, err)
	}

	return inst.StatusCode
}

func testCtx(t *testing.T) context.Context {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)

	return ctx
}

func TestDefaultSocketPath(t *testing.T) {
	t.Setenv("BERTH_SOCKET", "")
	t.Setenv("BERTH_DIR", "")

	if got := client.DefaultSocketPath(); got != "/var/lib/berth/unix.socket" {
		t.Errorf("default = %q", got)
	}

	t.Setenv("BERTH_DIR", "/srv/berth")
	if got := client.DefaultSocketPath(); got != "/srv/berth/unix.socket" {
		t.Errorf("with BERTH_DIR = %q", got)
	}

	t.Setenv("BERTH_SOCKET", "/run/b.sock")
	if got := client.DefaultSocketPath(); got != "/run/b.sock" {
		t.Errorf("with BERTH_SOCKET = %q", got)
	}
}

func TestConnectMissingSocket(t *testing.T) {
	_, err := client.Connect(filepath.Join(t.TempDir(), "nope.socket"))
	if err == nil || !strings.Contains(err.Error(), "is it running") {
		t.Fatalf("err = %v", err)
	}

	f := filepath.Join(t.TempDir(), "file")
	_ = os.WriteFile(f, nil, 0o600)

	_, err = client.Connect(f)
	if err == nil || !strings.Contains(err.Error(), "not a unix socket") {
		t.Fatalf("err = %v", err)
	}
}

func TestErrorEnvelope(t *testing.T) {
	s := start(t, testdaemon.Config{})
	c := connect(t, s)

	_, _, err := c.GetInstance(testCtx(t), "missing")
	if err == nil {
		t.Fatal("no error for a missing instance")
	}

	if err.Error() != `instance "missing" not found` {
		t.Errorf("message = %q", err.Error())
	}

	if code := api.StatusCodeOf(err); code != http.StatusNotFound {
		t.Errorf("status = %d, want 404", code)
	}

	if !api.StatusErrorCheck(err, http.StatusNotFound) {
		t.Error("StatusErrorCheck(404) = false")
	}
}

func TestNonJSONError(t *testing.T) {
	s := start(t, testdaemon.Config{})
	c := connect(t, s)

	_, err := c.GetForTest(testCtx(t), testdaemon.BrokenPath)
	if err == nil {
		t.Fatal("no error")
	}

	if api.StatusCodeOf(err) != http.StatusBadGateway || !strings.Contains(err.Error(), "502") {
		t.Errorf("err = %v (status %d)", err, api.StatusCodeOf(err))
	}
}

func TestSyncDecodeAndETag(t *testing.T) {
	s := start(t, testdaemon.Config{Instances: running("c1")})
	c := connect(t, s)
	ctx := testCtx(t)

	inst, etag, err := c.GetInstance(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}

	if inst.Name != "c1" || inst.StatusCode != api.Running || len(etag) < 3 || etag[0] != '"' {
		t.Errorf("got %s %v etag %q", inst.Name, inst.StatusCode, etag)
	}

	_, again, _ := c.GetInstance(ctx, "c1")
	if again != etag {
		t.Errorf("etag changed without a change: %q, then %q", etag, again)
	}

	names, err := c.GetInstanceNames(ctx)
	if err != nil || len(names) != 1 || names[0] != "c1" {
		t.Errorf("names = %v, %v", names, err)
	}

	full, err := c.GetInstancesFull(ctx)
	if err != nil || len(full) != 1 || full[0].State == nil || full[0].State.Pid != 4242 {
		t.Fatalf("full = %+v, %v", full, err)
	}

	reqs := s.Requests()
	last := reqs[len(reqs)-1]
	if last.Path != "/1.0/instances?filter=&recursion=2" {
		t.Errorf("last request %s", last.Path)
	}
}

func TestOperationWaitEvents(t *testing.T) {
	s := start(t, testdaemon.Config{OpDelay: 100 * time.Millisecond,
		Images: []testdaemon.Image{{Fingerprint: strings.Repeat("ab", 32), Aliases: []string{"debian/12"}}}})
	c := connect(t, s)
	ctx := testCtx(t)

	op, err := c.CreateInstance(ctx, api.InstancesPost{Name: "c1", Source: api.InstanceSource{Type: "image", Fingerprint: strings.Repeat("ab", 32)}})
	if err != nil {
		t.Fatal(err)
	}

	if op.StatusCode != api.Running {
		t.Errorf("initial status %v", op.StatusCode)
	}

	updates := 0
	err = op.WaitProgress(ctx, func(api.Operation) { updates++ })
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}

	if op.StatusCode != api.Success || updates == 0 {
		t.Errorf("final %v after %d updates; want Success via an event", op.StatusCode, updates)
	}

	if op.InstanceName() != "c1" {
		t.Errorf("InstanceName = %q", op.InstanceName())
	}

	if instanceStatus(t, c, "c1") != api.Stopped {
		t.Error("instance not created")
	}

	// The listener must have been opened before the POST, and no /wait polling used.
	sawEvents := false
	for _, r := range s.Requests() {
		if strings.HasPrefix(r.Path, "/1.0/events") {
			sawEvents = true
		}

		if r.Method == http.MethodPost && !sawEvents {
			t.Error("POST sent before the events listener was opened")
		}

		if strings.HasSuffix(r.Path, "/wait") || strings.Contains(r.Path, "/wait?") {
			t.Errorf("unexpected poll %s", r.Path)
		}
	}
}

func TestOperationFailure(t *testing.T) {
	s := start(t, testdaemon.Config{FailStart: "Failed to start: no init",
		Instances: []testdaemon.Instance{{Name: "c1", Status: "Stopped"}}})
	c := connect(t, s)
	ctx := testCtx(t)

	op, err := c.UpdateInstanceState(ctx, "c1", api.InstanceStatePut{Action: "start"})
	if err != nil {
		t.Fatal(err)
	}

	err = op.Wait(ctx)
	if err == nil || err.Error() != "Failed to start: no init" {
		t.Fatalf("Wait err = %v", err)
	}

	if op.StatusCode != api.Failure {
		t.Errorf("status %v", op.StatusCode)
	}
}

func TestOperationFinishedBeforeWait(t *testing.T) {
	s := testdaemon.Start(t, testdaemon.Config{Instances: []testdaemon.Instance{{Name: "c1", Status: "Stopped"}}})
	c := connect(t, s)
	ctx := testCtx(t)

	op, err := c.UpdateInstanceState(ctx, "c1", api.InstanceStatePut{Action: "start"})
	if err != nil {
		t.Fatal(err)
	}

	time.Sleep(50 * time.Millisecond)

	err = op.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}

	if st := instanceStatus(t, c, "c1"); st != api.Running {
		t.Errorf("status %v", st)
	}
}

func TestOperationWaitFallsBackWithoutEvents(t *testing.T) {
	s := start(t, testdaemon.Config{Instances: running("c1")})
	s.SetNoEvents(true)
	c := connect(t, s)
	ctx := testCtx(t)

	op, err := c.UpdateInstanceState(ctx, "c1", api.InstanceStatePut{Action: "stop", Timeout: -1})
	if err != nil {
		t.Fatal(err)
	}

	err = op.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}

	polled := false
	for _, r := range s.Requests() {
		if strings.Contains(r.Path, "/wait") {
			polled = true
		}
	}

	if !polled {
		t.Error("no /wait request without events")
	}
}

func TestOperationWaitEventsLost(t *testing.T) {
	s := start(t, testdaemon.Config{OpDelay: 300 * time.Millisecond, Instances: running("c1")})
	c := connect(t, s)
	ctx := testCtx(t)

	op, err := c.UpdateInstanceState(ctx, "c1", api.InstanceStatePut{Action: "freeze"})
	if err != nil {
		t.Fatal(err)
	}

	go func() {
		time.Sleep(50 * time.Millisecond)
		s.DropEventListeners()
	}()

	err = op.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}

	if op.StatusCode != api.Success {
		t.Errorf("status %v", op.StatusCode)
	}
}

func TestWaitContextCancel(t *testing.T) {
	s := start(t, testdaemon.Config{OpDelay: 5 * time.Second, Instances: running("c1")})
	c := connect(t, s)

	op, err := c.UpdateInstanceState(testCtx(t), "c1", api.InstanceStatePut{Action: "freeze"})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()

	start := time.Now()
	err = op.Wait(ctx)
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("Wait = %v after %v", err, time.Since(start))
	}
}

func TestCreateImageUpload(t *testing.T) {
	s := start(t, testdaemon.Config{})
	c := connect(t, s)
	ctx := testCtx(t)

	path, wantFP := testdaemon.ImageTarball(t, bytes.Repeat([]byte("rootfs"), 100000))

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	var lastSent, lastTotal int64
	op, err := c.CreateImage(ctx, bytes.NewReader(data), "/tmp/x/debian-12.tar.gz", func(sent, total int64) {
		lastSent, lastTotal = sent, total
	})
	if err != nil {
		t.Fatal(err)
	}

	err = op.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}

	fp, _ := op.Metadata["fingerprint"].(string)
	if fp != wantFP {
		t.Fatalf("fingerprint %q, want %q", fp, wantFP)
	}

	if lastSent != int64(len(data)) || lastTotal != int64(len(data)) {
		t.Errorf("progress %d/%d, want %d", lastSent, lastTotal, len(data))
	}

	var upload *testdaemon.Request
	for _, r := range s.Requests() {
		if r.Method == http.MethodPost && r.Path == "/1.0/images" {
			upload = &r
		}
	}

	if upload == nil {
		t.Fatal("no upload seen")
	}

	if upload.Header.Get("Content-Type") != "application/octet-stream" || upload.Header.Get("X-LXD-filename") != "debian-12.tar.gz" {
		t.Errorf("headers %v", upload.Header)
	}

	img, _, err := c.GetImage(ctx, fp[:12])
	if err != nil || img.Fingerprint != fp {
		t.Errorf("GetImage by prefix: %v %v", img, err)
	}

	// Uploading again fails, but the metadata still names the image.
	op, err = c.CreateImage(ctx, bytes.NewReader(data), "again.tar.gz", nil)
	if err != nil {
		t.Fatal(err)
	}

	err = op.Wait(ctx)
	if err == nil || op.Metadata["fingerprint"] != fp {
		t.Errorf("duplicate: err %v metadata %v", err, op.Metadata)
	}
}

func TestAliasWithSlash(t *testing.T) {
	fp := strings.Repeat("cd", 32)
	s := start(t, testdaemon.Config{Images: []testdaemon.Image{{Fingerprint: fp}}})
	c := connect(t, s)
	ctx := testCtx(t)

	err := c.CreateImageAlias(ctx, api.ImageAliasesPost{Name: "debian/12", ImageAliasesEntryPut: api.ImageAliasesEntryPut{Target: fp[:8]}})
	if err != nil {
		t.Fatal(err)
	}

	a, _, err := c.GetImageAlias(ctx, "debian/12")
	if err != nil || a.Target != fp {
		t.Fatalf("alias = %+v, %v", a, err)
	}

	err = c.CreateImageAlias(ctx, api.ImageAliasesPost{Name: "debian/12", ImageAliasesEntryPut: api.ImageAliasesEntryPut{Target: fp}})
	if api.StatusCodeOf(err) != http.StatusConflict {
		t.Errorf("duplicate alias err = %v", err)
	}

	err = c.DeleteImageAlias(ctx, "debian/12")
	if err != nil {
		t.Fatal(err)
	}

	sawEscaped := false
	for _, r := range s.Requests() {
		if r.Path == "/1.0/images/aliases/debian%2F12" {
			sawEscaped = true
		}
	}

	if !sawEscaped {
		t.Error("alias name not path-escaped")
	}
}

func TestGetEvents(t *testing.T) {
	s := start(t, testdaemon.Config{Instances: running("c1")})
	c := connect(t, s)
	ctx := testCtx(t)

	l, err := c.GetEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}

	got := make(chan api.Operation, 10)
	l.AddHandler([]string{"operation"}, func(ev api.Event) {
		o := api.Operation{}
		_ = json.Unmarshal(ev.Metadata, &o)
		got <- o
	})

	op, err := c.UpdateInstanceState(ctx, "c1", api.InstanceStatePut{Action: "freeze"})
	if err != nil {
		t.Fatal(err)
	}

	_ = op.Wait(ctx)

	select {
	case o := <-got:
		if o.ID != op.ID {
			t.Errorf("event for op %s, want %s", o.ID, op.ID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}

	l.Disconnect()
	<-l.Done()

	if l.Err() != nil {
		t.Errorf("Err after Disconnect = %v", l.Err())
	}
}

// TestCreateInstanceStart: start in the create request (instance_create_start, advertised)
// starts the instance in the create's operation, whose metadata says it made the instance.
// A failed start fails the operation and leaves the instance stopped, as Incus does, with
// that mark; a create that fails in its operation (the name taken meanwhile by another
// create) carries none, so a client does not take the other's instance for its own.
func TestCreateInstanceStart(t *testing.T) {
	fp := strings.Repeat("ab", 32)
	images := []testdaemon.Image{{Fingerprint: fp, Aliases: []string{"debian/12"}}}
	s := start(t, testdaemon.Config{Images: images})
	c := connect(t, s)
	ctx := testCtx(t)

	has, err := c.HasExtension(ctx, "instance_create_start")
	if err != nil || !has {
		t.Fatalf("instance_create_start not advertised: %v", err)
	}

	op, err := c.LaunchInstance(ctx, api.InstancesPost{Name: "c1", Start: true, Source: api.InstanceSource{Type: "image", Alias: "debian/12"}})
	if err == nil {
		err = op.Wait(ctx)
	}

	if err != nil || instanceStatus(t, c, "c1") != api.Running {
		t.Fatalf("c1 not running after a create with start: %v", err)
	}

	if op.Metadata[api.OperationInstanceCreated] != true {
		t.Errorf("operation metadata %v: no %s", op.Metadata, api.OperationInstanceCreated)
	}

	// Two creates of one name at once, each start failing: both pass the request's
	// checks; one makes c2 and fails at its start, the other fails at the create.
	failing := start(t, testdaemon.Config{FailStart: "Failed to start: no init", OpDelay: 500 * time.Millisecond, Images: images})
	c = connect(t, failing)

	var ops [2]*client.Operation
	for i := range ops {
		ops[i], err = c.LaunchInstance(ctx, api.InstancesPost{Name: "c2", Start: true, Source: api.InstanceSource{Type: "image", Fingerprint: fp}})
		if err != nil {
			t.Fatal(err)
		}
	}

	marked := 0
	for _, op := range ops {
		err := op.Wait(ctx)
		made := op.Metadata[api.OperationInstanceCreated] == true
		switch {
		case err == nil:
			t.Error("a create whose start fails succeeded")
		case made && err.Error() != "Failed to start: no init":
			t.Errorf("the create that made c2 failed with %v", err)
		case !made && !strings.Contains(err.Error(), "already exists"):
			t.Errorf("the create that lost the name failed with %v, metadata %v", err, op.Metadata)
		}

		if made {
			marked++
		}
	}

	if marked != 1 {
		t.Errorf("%d operations say they made c2, want 1", marked)
	}

	if instanceStatus(t, c, "c2") != api.Stopped {
		t.Error("the instance whose start failed is not there, stopped")
	}
}
