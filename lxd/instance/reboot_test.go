package instance

import (
	"os/exec"
	"testing"
	"time"
)

func TestWaitExit(t *testing.T) {
	cmd := exec.Command("sleep", "0.3")

	err := cmd.Start()
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = cmd.Wait() }()

	start := time.Now()
	waitExit(cmd.Process.Pid)

	if d := time.Since(start); d < 250*time.Millisecond || d > 5*time.Second {
		t.Errorf("waitExit returned after %v for a 300 ms process", d)
	}

	// Exited and reaped: at once.
	_ = cmd.Wait()
	start = time.Now()
	waitExit(cmd.Process.Pid)

	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("waitExit took %v for a process already gone", d)
	}
}
