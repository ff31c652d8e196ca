package testutil

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestWaitSystemdInitGone: a wait for a container whose init has exited ends at once,
// saying so, instead of looking for a bus until its deadline.
func TestWaitSystemdInitGone(t *testing.T) {
	cmd := exec.Command("true")
	err := cmd.Run()
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Now()
	_, err = WaitSystemd(ctx, cmd.Process.Pid)
	if err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("WaitSystemd of an exited pid: %v, want an error saying init exited", err)
	}

	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("WaitSystemd of an exited pid took %s", took)
	}
}
