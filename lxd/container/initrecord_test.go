package container

import (
	"os/exec"
	"testing"
)

// The record holds init's pid while the process lives and lets go of it once it exits
// (reaped, so its number is free for another process).
func TestInitRecordFollowsTheProcess(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	err := cmd.Start()
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	var r initRecord
	r.learn(cmd.Process.Pid)
	t.Cleanup(r.close)

	r.mu.Lock()
	alive := r.alive()
	r.mu.Unlock()
	if !alive || r.pid != cmd.Process.Pid {
		t.Fatalf("record of a live process: alive %v pid %d", alive, r.pid)
	}

	_ = cmd.Process.Kill()
	_ = cmd.Wait()

	r.mu.Lock()
	alive = r.alive()
	r.mu.Unlock()
	if alive {
		t.Fatal("record of a reaped process says it lives")
	}

	// A monitor that reports no init leaves a record that never says it lives.
	var none initRecord
	none.learn(0)
	none.mu.Lock()
	defer none.mu.Unlock()
	if none.alive() {
		t.Fatal("an empty record says init lives")
	}
}
