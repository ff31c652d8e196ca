package networks

import (
	"net/http"
	"testing"

	"github.com/berth-dev/berth/lxd/firewall"
	"github.com/berth-dev/berth/shared/api"
	"golang.org/x/sys/unix"
)

func TestCompileRule(t *testing.T) {
	resolve := func(name string) ([]firewall.ACLAddr, error) {
		return []firewall.ACLAddr{{From: []byte{10, 0, 0, 7}, To: []byte{10, 0, 0, 7}}}, nil
	}

	r := api.NetworkACLRule{Action: "allow", Protocol: "tcp", Source: "10.0.0.0/24,10.1.0.1-10.1.0.9,web,fd00::1", DestinationPort: "80,8000-8010", State: "enabled"}
	got, err := compileRule(r, resolve)
	if err != nil {
		t.Fatal(err)
	}

	// 4 sources × 2 port ranges.
	if len(got) != 8 {
		t.Fatalf("%d rules: %+v", len(got), got)
	}

	if got[0].Family != unix.NFPROTO_IPV4 || got[0].Source.To.String() != "10.0.0.255" || got[1].DstPorts != [2]uint16{8000, 8010} {
		t.Fatalf("first rules: %+v %+v", got[0], got[1])
	}

	if got[6].Family != unix.NFPROTO_IPV6 || got[0].Drop {
		t.Fatalf("IPv6 source: %+v", got[6])
	}

	// An IPv4 source with an IPv6 destination matches nothing: no rule.
	got, err = compileRule(api.NetworkACLRule{Action: "drop", Source: "10.0.0.1", Destination: "fd00::1"}, resolve)
	if err != nil || len(got) != 0 {
		t.Fatalf("mixed families: %+v %v", got, err)
	}

	got, err = compileRule(api.NetworkACLRule{Action: "reject", State: "disabled"}, resolve)
	if err != nil || len(got) != 0 {
		t.Fatalf("disabled: %+v %v", got, err)
	}

	got, err = compileRule(api.NetworkACLRule{Action: "reject", Protocol: "icmp4", ICMPType: "8"}, resolve)
	if err != nil || len(got) != 1 || !got[0].Drop || !got[0].Reject || got[0].ICMPType != 8 || got[0].ICMPCode != -1 || got[0].Family != unix.NFPROTO_IPV4 {
		t.Fatalf("icmp: %+v %v", got, err)
	}

	for name, bad := range map[string]api.NetworkACLRule{
		"action":         {Action: "maybe"},
		"state":          {Action: "allow", State: "on"},
		"protocol":       {Action: "allow", Protocol: "sctp"},
		"port without":   {Action: "allow", DestinationPort: "80"},
		"icmp without":   {Action: "allow", ICMPType: "8"},
		"icmp type":      {Action: "allow", Protocol: "icmp6", ICMPType: "256"},
		"port":           {Action: "allow", Protocol: "udp", SourcePort: "0"},
		"port range":     {Action: "allow", Protocol: "udp", SourcePort: "90-80"},
		"source":         {Action: "allow", Source: "10.0.0.300"},
		"cidr":           {Action: "allow", Source: "10.0.0.0/33"},
		"range":          {Action: "allow", Source: "10.0.0.9-10.0.0.1"},
		"range families": {Action: "allow", Source: "10.0.0.1-fd00::1"},
		"not a name":     {Action: "allow", Destination: "-web"},
	} {
		_, err := compileRule(bad, resolve)
		if err == nil {
			t.Errorf("%s: accepted %+v", name, bad)
		}
	}
}

func TestValidateACL(t *testing.T) {
	known := func(n string) bool { return n == "web" }
	ok := api.NetworkACLPut{Ingress: []api.NetworkACLRule{{Action: "allow", Source: "web"}}, Config: map[string]string{"user.a": "b"}}
	err := validateACL(ok, known)
	if err != nil {
		t.Fatal(err)
	}

	for name, bad := range map[string]api.NetworkACLPut{
		"unknown acl": {Egress: []api.NetworkACLRule{{Action: "allow", Destination: "db"}}},
		"config":      {Config: map[string]string{"bogus": "1"}},
		"rule":        {Egress: []api.NetworkACLRule{{Action: "nope"}}},
		"too many":    {Ingress: make([]api.NetworkACLRule, maxACLRules+1)},
	} {
		err := validateACL(bad, known)
		if !api.StatusErrorCheck(err, http.StatusBadRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
