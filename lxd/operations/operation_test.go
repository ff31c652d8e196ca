package operations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/events"
	"github.com/berth-dev/berth/shared/api"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// setup returns a registry and a subscription to its operation events.
func setup(t *testing.T) (*Registry, <-chan api.Event) {
	t.Helper()
	ev := events.NewServer(quietLog())
	t.Cleanup(ev.Close)
	ch, cancel := ev.Subscribe([]string{api.EventTypeOperation})
	t.Cleanup(cancel)
	return NewRegistry(ev, quietLog()), ch
}

// nextOp decodes the next operation event.
func nextOp(t *testing.T, ch <-chan api.Event) api.Operation {
	t.Helper()
	select {
	case ev := <-ch:
		var op api.Operation
		err := json.Unmarshal(ev.Metadata, &op)
		if err != nil {
			t.Fatalf("decoding event: %v", err)
		}

		return op
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for an operation event")
	}

	return api.Operation{}
}

func waitDone(t *testing.T, op *Operation) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := op.Wait(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("operation did not finish")
	}

	return err
}

func TestLifecycleEventsInOrder(t *testing.T) {
	reg, ch := setup(t)
	proceed := make(chan struct{})
	run := func(ctx context.Context, op *Operation) error {
		<-proceed
		err := op.UpdateMetadata(map[string]any{"return": 3})
		if err != nil {
			return err
		}

		return nil
	}

	fds := map[string]string{"0": "a", "control": "b"}
	op, err := reg.Create(api.OperationClassWebsocket, "Executing command",
		map[string][]string{"instances": {"/1.0/instances/c1"}},
		map[string]any{"fds": fds, "interactive": false}, run, nil, nil)
	if err != nil {
		t.Fatal(err)
	}

	ev := nextOp(t, ch)
	if ev.StatusCode != api.Pending || ev.ID != op.ID() {
		t.Fatalf("first event %+v", ev)
	}

	err = op.Start()
	if err != nil {
		t.Fatal(err)
	}

	ev = nextOp(t, ch)
	if ev.StatusCode != api.Running || ev.Status != "Running" {
		t.Fatalf("start event %+v", ev)
	}

	if ev.Resources["containers"][0] != "/1.0/instances/c1" || ev.Location != "none" {
		t.Fatalf("resources/location %+v", ev)
	}

	if ev.Metadata["fds"].(map[string]any)["control"] != "b" {
		t.Fatalf("fds not an object of strings: %#v", ev.Metadata["fds"])
	}

	// Types are kept in-process: no JSON round trip.
	if _, ok := op.Render().Metadata["fds"].(map[string]string); !ok {
		t.Fatalf("fds type mangled: %T", op.Render().Metadata["fds"])
	}

	close(proceed)
	ev = nextOp(t, ch)
	if ev.StatusCode != api.Running || ev.Metadata["return"] != float64(3) {
		t.Fatalf("metadata event %+v", ev)
	}

	ev = nextOp(t, ch)
	if ev.StatusCode != api.Success || ev.Status != "Success" || ev.Metadata["return"] != float64(3) || ev.Err != "" {
		t.Fatalf("final event %+v", ev)
	}

	if ev.Metadata["interactive"] != false {
		t.Fatalf("metadata lost a key: %+v", ev.Metadata)
	}

	err = waitDone(t, op)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}

	err = op.UpdateMetadata(map[string]any{"late": 1})
	if !api.StatusErrorCheck(err, http.StatusBadRequest) {
		t.Fatalf("update after end: %v", err)
	}

	// Start is idempotent.
	err = op.Start()
	if err != nil {
		t.Fatal(err)
	}

	select {
	case ev := <-ch:
		t.Fatalf("unexpected event after end: %s", ev.Metadata)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestFailureText(t *testing.T) {
	reg, ch := setup(t)
	op, err := reg.Create(api.OperationClassTask, "Failing", nil, nil,
		func(context.Context, *Operation) error {
			return fmt.Errorf("creating rootfs: %w", errors.New("disk full"))
		}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}

	_ = op.Start()
	err = waitDone(t, op)
	if err == nil || err.Error() != "creating rootfs: disk full" {
		t.Fatalf("Wait: %v", err)
	}

	_ = nextOp(t, ch) // pending
	_ = nextOp(t, ch) // running
	ev := nextOp(t, ch)
	if ev.StatusCode != api.Failure || ev.Status != "Failure" || ev.Err != "creating rootfs: disk full" {
		t.Fatalf("final event %+v", ev)
	}

	got := op.Render()
	if got.StatusCode != api.Failure || got.Err != ev.Err || got.Metadata != nil {
		t.Fatalf("render %+v", got)
	}
}

func TestRunContextCancellationIsCancelled(t *testing.T) {
	reg, _ := setup(t)
	op, _ := reg.Create(api.OperationClassTask, "x", nil, nil,
		func(context.Context, *Operation) error { return context.Canceled }, nil, nil)
	_ = op.Start()
	err := waitDone(t, op)
	if !errors.Is(err, ErrCancelled) || op.Status() != api.Cancelled {
		t.Fatalf("got %v, %v", err, op.Status())
	}
}

func TestCancel(t *testing.T) {
	reg, ch := setup(t)

	// Not cancellable.
	block := make(chan struct{})
	defer close(block)
	op, _ := reg.Create(api.OperationClassTask, "x", nil, nil,
		func(context.Context, *Operation) error { <-block; return nil }, nil, nil)
	_ = op.Start()
	err := op.Cancel()
	if !api.StatusErrorCheck(err, http.StatusBadRequest) {
		t.Fatalf("cancel of non-cancellable op: %v", err)
	}

	// Cancellable through its context.
	hooked := false
	op2, _ := reg.Create(api.OperationClassTask, "y", nil, nil,
		func(ctx context.Context, _ *Operation) error { <-ctx.Done(); return ctx.Err() },
		nil, func(*Operation) error { hooked = true; return nil })
	if !op2.Render().MayCancel {
		t.Fatal("may_cancel false")
	}

	_ = op2.Start()
	err = op2.Cancel()
	if err != nil {
		t.Fatal(err)
	}

	err = waitDone(t, op2)
	if !errors.Is(err, ErrCancelled) || !hooked {
		t.Fatalf("Wait: %v hooked=%v", err, hooked)
	}

	r := op2.Render()
	if r.StatusCode != api.Cancelled || r.Err == "" || r.MayCancel {
		t.Fatalf("render %+v", r)
	}

	err = op2.Cancel()
	if !api.StatusErrorCheck(err, http.StatusBadRequest) {
		t.Fatalf("second cancel: %v", err)
	}

	// Seen: op pending, op running, op2 pending, op2 running, cancelling, cancelled.
	var codes []api.StatusCode
	for i := 0; i < 6; i++ {
		codes = append(codes, nextOp(t, ch).StatusCode)
	}

	want := []api.StatusCode{api.Pending, api.Running, api.Pending, api.Running, api.Cancelling, api.Cancelled}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("event codes %v, want %v", codes, want)
		}
	}

	// A token without run is cancelled at once; a refusing hook keeps it running.
	refuse := true
	tok, _ := reg.Create(api.OperationClassToken, "token", nil, map[string]any{"secret": "s"}, nil, nil,
		func(*Operation) error {
			if refuse {
				return api.StatusErrorf(http.StatusForbidden, "no")
			}

			return nil
		})
	_ = tok.Start()
	err = tok.Cancel()
	if !api.StatusErrorCheck(err, http.StatusForbidden) || tok.Status() != api.Running {
		t.Fatalf("refused cancel: %v %v", err, tok.Status())
	}

	refuse = false
	err = tok.Cancel()
	if err != nil || tok.Status() != api.Cancelled {
		t.Fatalf("token cancel: %v %v", err, tok.Status())
	}
}

func TestWaitFinal(t *testing.T) {
	reg, _ := setup(t)
	release := make(chan struct{})
	op, _ := reg.Create(api.OperationClassTask, "x", nil, nil,
		func(context.Context, *Operation) error { <-release; return nil }, nil, nil)
	_ = op.Start()

	got, err := op.WaitFinal(context.Background(), 20*time.Millisecond)
	if err != nil || got.StatusCode != api.Running {
		t.Fatalf("timeout wait: %+v %v", got, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = op.WaitFinal(ctx, -1)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}

	close(release)
	got, err = op.WaitFinal(context.Background(), -1)
	if err != nil || got.StatusCode != api.Success {
		t.Fatalf("final wait: %+v %v", got, err)
	}
}

func TestGarbageCollection(t *testing.T) {
	reg, _ := setup(t)
	reg.retention = 50 * time.Millisecond

	op, _ := reg.Create(api.OperationClassTask, "x", nil, nil,
		func(context.Context, *Operation) error { return nil }, nil, nil)
	_ = op.Start()
	_ = waitDone(t, op)

	running, _ := reg.Create(api.OperationClassToken, "token", nil, nil, nil, nil, nil)
	_ = running.Start()

	_, err := reg.Get(op.ID())
	if err != nil {
		t.Fatalf("recent op not retrievable: %v", err)
	}

	time.Sleep(80 * time.Millisecond)
	_, err = reg.Get(op.ID())
	if !api.StatusErrorCheck(err, http.StatusNotFound) {
		t.Fatalf("old op still there: %v", err)
	}

	_, err = reg.Get(running.ID())
	if err != nil {
		t.Fatalf("running op collected: %v", err)
	}

	if len(reg.List()) != 1 {
		t.Fatalf("list has %d ops", len(reg.List()))
	}
}

func TestDefaultRetentionAtLeastAMinute(t *testing.T) {
	reg := NewRegistry(nil, quietLog())
	if reg.retention < time.Minute {
		t.Fatalf("retention %v", reg.retention)
	}
}

func TestConnectWebsocket(t *testing.T) {
	reg, _ := setup(t)
	secret := "s3cret"

	connected := make(chan struct{}, 1)
	onConnect := func(op *Operation, r *http.Request, w http.ResponseWriter) error {
		if r.URL.Query().Get("secret") != secret {
			return api.StatusErrorf(http.StatusForbidden, "wrong secret")
		}

		connected <- struct{}{}
		return nil
	}

	op, _ := reg.Create(api.OperationClassWebsocket, "exec", nil, nil, nil, onConnect, nil)
	req := func(secret string) *http.Request {
		return httptest.NewRequest("GET", op.URL()+"/websocket?secret="+secret, nil)
	}

	w := httptest.NewRecorder()
	err := reg.ConnectWebsocket(op.ID(), req(secret), w)
	if !api.StatusErrorCheck(err, http.StatusBadRequest) {
		t.Fatalf("pending op: %v", err)
	}

	_ = op.Start()
	cases := []struct {
		id, secret string
		code       int
	}{
		{"nope", secret, http.StatusNotFound},
		{op.ID(), "", http.StatusBadRequest},
		{op.ID(), "bad", http.StatusForbidden},
	}
	for _, c := range cases {
		err := reg.ConnectWebsocket(c.id, req(c.secret), w)
		if !api.StatusErrorCheck(err, c.code) {
			t.Fatalf("%+v: got %v", c, err)
		}
	}

	err = reg.ConnectWebsocket(op.ID(), req(secret), w)
	if err != nil {
		t.Fatal(err)
	}

	select {
	case <-connected:
	default:
		t.Fatal("onConnect not called")
	}

	task, _ := reg.Create(api.OperationClassTask, "t", nil, nil, nil, nil, nil)
	_ = task.Start()
	err = reg.ConnectWebsocket(task.ID(), req(secret), w)
	if !api.StatusErrorCheck(err, http.StatusBadRequest) {
		t.Fatalf("task op: %v", err)
	}
}

func TestUnknownClass(t *testing.T) {
	reg, _ := setup(t)
	_, err := reg.Create("bogus", "x", nil, nil, nil, nil, nil)
	if err == nil {
		t.Fatal("want error")
	}
}

// TestConcurrency exercises the registry and operations from many goroutines;
// it is meant to run under -race.
func TestConcurrency(t *testing.T) {
	reg, _ := setup(t)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			op, err := reg.Create(api.OperationClassTask, "c", nil, map[string]any{"i": i},
				func(ctx context.Context, op *Operation) error {
					for j := 0; j < 10; j++ {
						_ = op.UpdateMetadata(map[string]any{"step": j})
					}

					return nil
				}, nil, func(*Operation) error { return nil })
			if err != nil {
				t.Error(err)
				return
			}

			go func() { _ = op.Start() }()
			go func() { _ = op.Cancel() }()
			for _, o := range reg.List() {
				_ = o.Render()
			}

			_, _ = reg.Get(op.ID())
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err = op.Wait(ctx)
			if errors.Is(err, context.DeadlineExceeded) {
				t.Error("operation did not finish")
				return
			}

			st := op.Status()
			if st != api.Success && st != api.Cancelled {
				t.Errorf("status %v", st)
			}
		}()
	}

	wg.Wait()
}

// A token's secret never goes out in an event; the operation itself keeps it.
func TestTokenSecretNotInEvents(t *testing.T) {
	reg, ch := setup(t)
	op, err := reg.Create(api.OperationClassToken, "Certificate add token", nil,
		map[string]any{"secret": "s3cr3t", "fingerprint": "fp"}, nil, nil, func(*Operation) error { return nil })
	if err != nil {
		t.Fatal(err)
	}

	_ = op.Start()
	_ = op.Cancel()
	for i := 0; i < 4; i++ { // created, running, cancelling, cancelled
		ev := nextOp(t, ch)
		if _, ok := ev.Metadata["secret"]; ok || ev.Metadata["fingerprint"] != "fp" {
			t.Fatalf("event %d metadata %v: the secret went out, or the rest did not", i, ev.Metadata)
		}
	}

	if op.Render().Metadata["secret"] != "s3cr3t" {
		t.Fatal("the operation lost its secret")
	}
}

// AbortOwnedBy ends an owner's operations, cancellable or not, started or not, and
// leaves everyone else's alone.
func TestAbortOwnedBy(t *testing.T) {
	reg, _ := setup(t)
	run := func(ctx context.Context, _ *Operation) error {
		<-ctx.Done()
		return ctx.Err()
	}

	mine, _ := reg.Create(api.OperationClassWebsocket, "exec", nil, nil, run, nil, nil)
	mine.SetOwner("aa")
	_ = mine.Start()
	pending, _ := reg.Create(api.OperationClassWebsocket, "console", nil, nil, run, nil, nil)
	pending.SetOwner("aa")
	other, _ := reg.Create(api.OperationClassWebsocket, "exec", nil, nil, run, nil, nil)
	other.SetOwner("bb")
	_ = other.Start()
	t.Cleanup(other.Abort)

	if n := reg.AbortOwnedBy("aa"); n != 2 {
		t.Fatalf("aborted %d, want 2", n)
	}

	for _, op := range []*Operation{mine, pending} {
		if err := waitDone(t, op); !errors.Is(err, ErrCancelled) && !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v, want cancelled", op.description, err)
		}

		if op.Status() != api.Cancelled {
			t.Errorf("%s: %s", op.description, op.Status())
		}
	}

	_ = pending.Start() // too late: it stays cancelled, run never starts
	if pending.Status() != api.Cancelled || other.Status() != api.Running {
		t.Fatalf("pending %s, other %s", pending.Status(), other.Status())
	}

	if n := reg.AbortOwnedBy(""); n != 0 {
		t.Fatalf("the unix socket's operations have no owner: aborted %d", n)
	}
}
