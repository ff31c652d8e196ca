package device

import (
	"strings"
	"testing"
)

// TestClaimHostName: a veth name is handed to one start at a time, and never while a
// link has it (a name's port filter would otherwise pass to another container).
func TestClaimHostName(t *testing.T) {
	if !claimHostName("vethclaim01") {
		t.Fatal("a free name was refused")
	}

	if claimHostName("vethclaim01") {
		t.Error("a name held by a start in flight was handed out again")
	}

	releaseHostName("vethclaim01")
	if !claimHostName("vethclaim01") {
		t.Error("a released name stays held")
	}

	releaseHostName("vethclaim01")
	if claimHostName("lo") {
		t.Error("the name of an existing link was handed out")
	}
}

// TestNewNICAddresses: a new instance's NICs get a MAC each, except one set on the
// device or already recorded (an instance that moves here keeps its own); other devices
// get none.
func TestNewNICAddresses(t *testing.T) {
	config := map[string]string{"volatile.kept.hwaddr": "00:16:3e:00:00:01"}
	devices := map[string]map[string]string{
		"eth0":  {"type": "nic", "network": "br0"},
		"fixed": {"type": "nic", "network": "br0", "hwaddr": "00:16:3e:00:00:02"},
		"kept":  {"type": "nic", "network": "br0"},
		"root":  {"type": "disk", "path": "/", "pool": "default"},
	}

	got := NewNICAddresses(config, devices)
	if len(got) != 1 || !strings.HasPrefix(got["volatile.eth0.hwaddr"], "00:16:3e:") {
		t.Errorf("new addresses %v, want one for eth0 alone", got)
	}

	if again := NewNICAddresses(config, devices); again["volatile.eth0.hwaddr"] == got["volatile.eth0.hwaddr"] {
		t.Errorf("two instances got the same MAC %s", got["volatile.eth0.hwaddr"])
	}
}
