package container

import "testing"

// Whether init's end came of a stop the monitor's own SIGTERM began (the host's shutdown).
func TestExitTerm(t *testing.T) {
	cases := []struct {
		termed, late, reboot bool
		want                 bool
	}{
		{false, false, false, false}, // no SIGTERM
		{true, false, false, true},   // SIGTERM while init ran: the host's stop
		{true, true, false, false},   // SIGTERM once a power-off inside had ended init
		{true, true, true, true},     // SIGTERM during a reboot inside: meant to run on
	}

	for _, c := range cases {
		m := &monitor{termed: c.termed, termLate: c.late}
		if got := m.exitTerm(Exit{Reboot: c.reboot}); got != c.want {
			t.Errorf("termed %v, late %v, reboot %v: Term = %v, want %v", c.termed, c.late, c.reboot, got, c.want)
		}
	}
}
