package networks

import (
	"net"
	"net/http"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

func TestParsePorts(t *testing.T) {
	for in, want := range map[string]int{"80": 1, "80-82": 3, "80,443,1000-1001": 4, " 22 , 23": 2} {
		got, err := parsePorts(in, 100)
		if err != nil || len(got) != want {
			t.Errorf("parsePorts(%q) = %v, %v; want %d ports", in, got, err, want)
		}
	}

	for _, bad := range []string{"", "0", "65536", "80-", "-80", "90-80", "a", "80,,81", "1-65535"} {
		_, err := parsePorts(bad, 100)
		if !api.StatusErrorCheck(err, http.StatusBadRequest) {
			t.Errorf("parsePorts(%q): %v, want 400", bad, err)
		}
	}
}

func TestForwardRules(t *testing.T) {
	a := addrsOf(map[string]string{"ipv4.address": "10.1.2.1/24", "ipv6.address": "none"})
	listen := net.ParseIP("192.0.2.10").To4()
	port := func(proto, lp, addr, tp string) api.NetworkForwardPort {
		return api.NetworkForwardPort{Protocol: proto, ListenPort: lp, TargetAddress: addr, TargetPort: tp}
	}

	ok := api.NetworkForwardPut{
		Config: map[string]string{"target_address": "10.1.2.5", "user.x": "y"},
		Ports:  []api.NetworkForwardPort{port("tcp", "80,443", "10.1.2.3", "8080"), port("udp", "53-54", "10.1.2.4", "1053-1054"), port("tcp", "22", "10.1.2.3", "")},
	}

	rules, err := forwardRules(listen, ok, a)
	if err != nil {
		t.Fatal(err)
	}

	if len(rules) != 6 || rules[1].TargetPort != 8080 || rules[3].TargetPort != 1054 || rules[4].TargetPort != 22 || rules[5].Protocol != "" {
		t.Fatalf("rules: %+v", rules)
	}

	bad := map[string]api.NetworkForwardPut{
		"protocol":           {Ports: []api.NetworkForwardPort{port("icmp", "80", "10.1.2.3", "")}},
		"target outside":     {Ports: []api.NetworkForwardPort{port("tcp", "80", "10.9.9.9", "")}},
		"target gateway":     {Ports: []api.NetworkForwardPort{port("tcp", "80", "10.1.2.1", "")}},
		"target not an IP":   {Ports: []api.NetworkForwardPort{port("tcp", "80", "c1", "")}},
		"target v6":          {Ports: []api.NetworkForwardPort{port("tcp", "80", "fd00::1", "")}},
		"port count":         {Ports: []api.NetworkForwardPort{port("tcp", "80-82", "10.1.2.3", "90-91")}},
		"duplicate":          {Ports: []api.NetworkForwardPort{port("tcp", "80", "10.1.2.3", ""), port("tcp", "79-81", "10.1.2.4", "")}},
		"too many ports":     {Ports: []api.NetworkForwardPort{port("tcp", "1-2000", "10.1.2.3", "")}},
		"config key":         {Config: map[string]string{"bogus": "1"}},
		"default target bad": {Config: map[string]string{"target_address": "10.1.3.1"}},
	}

	for name, put := range bad {
		_, err := forwardRules(listen, put, a)
		if !api.StatusErrorCheck(err, http.StatusBadRequest) {
			t.Errorf("%s: %v, want 400", name, err)
		}
	}

	many := api.NetworkForwardPut{}
	for range maxForwardPortEntries + 1 {
		many.Ports = append(many.Ports, port("tcp", "1", "10.1.2.3", ""))
	}

	_, err = forwardRules(listen, many, a)
	if !api.StatusErrorCheck(err, http.StatusBadRequest) {
		t.Errorf("too many entries: %v", err)
	}
}

func TestParseListen(t *testing.T) {
	for _, bad := range []string{"", "x", "127.0.0.1", "::1", "0.0.0.0", "224.0.0.1", "fe80::1", "10.0.0.1/24"} {
		_, err := parseListen(bad)
		if !api.StatusErrorCheck(err, http.StatusBadRequest) {
			t.Errorf("parseListen(%q): %v", bad, err)
		}
	}

	ip, err := parseListen("192.0.2.1")
	if err != nil || len(ip) != 4 {
		t.Errorf("parseListen: %v %v", ip, err)
	}
}
