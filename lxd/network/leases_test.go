package network

import (
	"strings"
	"testing"
)

func TestParseLeases(t *testing.T) {
	in := strings.Join([]string{
		"1700000000 00:16:3e:aa:bb:cc 10.0.3.10 c1 01:00:16:3e:aa:bb:cc",
		"1700000000 00:16:3E:AA:BB:DD 10.0.3.11 * *",
		"duid 00:01:00:01:2c:aa",
		"1700000000 not-a-mac 10.0.3.12 c3 *",
		"1700000000 00:16:3e:aa:bb:ee 10.0.3.300 c4 *",
		"1700000000 00:16:3e:aa:bb:ff 10.0.3.13 bad/name *",
	}, "\n")

	got := parseLeases(strings.NewReader(in))
	if len(got) != 3 {
		t.Fatalf("want 3 leases, got %+v", got)
	}

	if got[0].Hostname != "c1" || got[0].Address != "10.0.3.10" || got[0].Type != "dynamic" {
		t.Errorf("first lease: %+v", got[0])
	}

	if got[1].Hostname != "" || got[1].Hwaddr != "00:16:3e:aa:bb:dd" {
		t.Errorf("unnamed lease: %+v", got[1])
	}

	if got[2].Hostname != "" {
		t.Errorf("unsafe host name kept: %+v", got[2])
	}
}
