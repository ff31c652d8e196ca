package client_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/client/internal/testdaemon"
	"github.com/berth-dev/berth/shared/api"
)

func TestConsoleAttachDetach(t *testing.T) {
	_, c := execServer(t)

	out := &lockedBuffer{}
	termR, termW := io.Pipe()
	defer func() { _ = termW.Close() }()

	sess, err := c.ConsoleInstance(testCtx(t), "c1", api.InstanceConsolePost{Width: 100, Height: 30}, client.ConsoleArgs{Terminal: termR, Output: out})
	if err != nil {
		t.Fatalf("ConsoleInstance: %v", err)
	}

	// The fake console shows its size changes: first the requested one.
	waitFor(t, "login prompt", func() bool { return strings.HasSuffix(out.String(), "c1 login: [size 100x30]") })

	// One console at a time.
	_, err = c.ConsoleInstance(testCtx(t), "c1", api.InstanceConsolePost{}, client.ConsoleArgs{})
	var se api.StatusError
	if !errors.As(err, &se) || se.Status() != 409 {
		t.Errorf("second attach: %v, want a 409", err)
	}

	_, _ = termW.Write([]byte("root"))
	waitFor(t, "echo", func() bool { return strings.HasSuffix(out.String(), "[size 100x30]root") })

	err = sess.Resize(132, 50)
	if err != nil {
		t.Fatalf("Resize: %v", err)
	}

	waitFor(t, "resize", func() bool { return strings.HasSuffix(out.String(), "root[size 132x50]") })

	sess.Detach()

	err = sess.Wait(testCtx(t))
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}

	if !strings.HasSuffix(out.String(), "\n\r") {
		t.Errorf("output does not end with the server's goodbye: %q", out.String())
	}

	select {
	case <-sess.OutputDone():
	default:
		t.Error("output not done after Wait")
	}

	// Detached: a new attach works.
	sess2, err := c.ConsoleInstance(testCtx(t), "c1", api.InstanceConsolePost{}, client.ConsoleArgs{})
	if err != nil {
		t.Fatalf("attach after detach: %v", err)
	}

	sess2.Detach()
	if err := sess2.Wait(testCtx(t)); err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

func TestConsoleLog(t *testing.T) {
	s := start(t, testdaemon.Config{Instances: running("c1"), ConsoleLog: "systemd[1]: Started getty@tty1.service\n"})
	c := connect(t, s)

	rc, err := c.GetInstanceConsoleLog(testCtx(t), "c1")
	if err != nil {
		t.Fatalf("GetInstanceConsoleLog: %v", err)
	}

	data, _ := io.ReadAll(rc)
	_ = rc.Close()
	if string(data) != "systemd[1]: Started getty@tty1.service\n" {
		t.Errorf("log %q", data)
	}

	err = c.DeleteInstanceConsoleLog(testCtx(t), "c1")
	if err != nil {
		t.Fatalf("DeleteInstanceConsoleLog: %v", err)
	}

	rc, err = c.GetInstanceConsoleLog(testCtx(t), "c1")
	if err != nil {
		t.Fatalf("GetInstanceConsoleLog: %v", err)
	}

	data, _ = io.ReadAll(rc)
	_ = rc.Close()
	if len(data) != 0 {
		t.Errorf("log not cleared: %q", data)
	}

	_, err = c.GetInstanceConsoleLog(testCtx(t), "missing")
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing instance: %v", err)
	}
}
