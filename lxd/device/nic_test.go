package device

import "testing"

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
