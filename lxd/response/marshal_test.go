package response

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

type selfList []int

func (selfList) MarshalJSON() ([]byte, error) { return []byte(`"whole"`), nil }

type failing struct{}

func (failing) MarshalJSON() ([]byte, error) { return nil, errors.New("no") }

// TestMarshalMetadataIsMarshal checks that the parts, joined, are json.Marshal's bytes,
// for lists long enough to be split and for what must be encoded whole, on as many CPUs
// as a big host has (more than the list has parts).
func TestMarshalMetadataIsMarshal(t *testing.T) {
	insts := make([]api.InstanceFull, 100)
	for i := range insts {
		insts[i].Name = fmt.Sprintf("c%03d", i)
		insts[i].Config = map[string]string{"user.note": "<&>\u2028", "b": "1", "a": "2"}
		insts[i].State = &api.InstanceState{Pid: int64(i)}
	}

	ints := make([]int, 1000)
	for i := range ints {
		ints[i] = i
	}

	anys := make([]any, 40)
	for i := range anys {
		anys[i] = map[string]any{"i": i, "s": []string{"x"}}
	}

	values := []any{insts, insts[:32], insts[:31], insts[:0], []api.InstanceFull(nil), ints, anys,
		bytes.Repeat([]byte{7}, 100), selfList(ints), map[string]int{"a": 1}, "text", nil}

	for _, procs := range []int{1, 2, 3, 64} {
		prev := runtime.GOMAXPROCS(procs)
		for i, v := range values {
			want, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}

			got, err := marshalMetadata(v)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("GOMAXPROCS=%d, value %d (%T): %v\n%.200s\nwant\n%.200s", procs, i, v, err, got, want)
			}
		}

		runtime.GOMAXPROCS(prev)
	}
}

// numbersWith is n numbers, v in place of the one at i: a list long enough to be split.
func numbersWith(n, i int, v any) []any {
	list := make([]any, n)
	for j := range list {
		list[j] = j
	}

	list[i] = v
	return list
}

// TestMarshalMetadataError checks that an element that fails to encode fails the whole.
func TestMarshalMetadataError(t *testing.T) {
	prev := runtime.GOMAXPROCS(4)
	defer runtime.GOMAXPROCS(prev)

	_, err := marshalMetadata(numbersWith(64, 50, failing{}))
	if err == nil {
		t.Error("a list with an element that fails to encode encoded")
	}
}

// benchInstances is n instances shaped like a running container of the test image: its
// config twice (local and expanded), its NIC and root disk, its NICs' state.
func benchInstances(n int) []api.InstanceFull {
	insts := make([]api.InstanceFull, n)
	for i := range insts {
		config := map[string]string{
			"image.architecture": "x86_64", "image.description": "Debian bookworm (berth)", "image.os": "debian",
			"image.release": "bookworm", "volatile.base_image": "924dfa0ecccb1e3ea7712053cef8124c07d46f214c6649806f768f4d1245b957",
			"volatile.eth0.host_name": fmt.Sprintf("veth%08x", i), "volatile.eth0.hwaddr": fmt.Sprintf("00:16:3e:54:%02x:%02x", i/256, i%256),
			"volatile.idmap.base": "1000000", "volatile.last_state.power": "RUNNING", "volatile.uuid": fmt.Sprintf("0b4d86a4-839a-460f-8205-a4a92dfe%04x", i),
			"volatile.idmap.next":       `[{"Isuid":true,"Isgid":false,"Hostid":1000000,"Nsid":0,"Maprange":65536},{"Isuid":false,"Isgid":true,"Hostid":1000000,"Nsid":0,"Maprange":65536}]`,
			"volatile.last_state.idmap": `[{"Isuid":true,"Isgid":false,"Hostid":1000000,"Nsid":0,"Maprange":65536},{"Isuid":false,"Isgid":true,"Hostid":1000000,"Nsid":0,"Maprange":65536}]`,
		}

		nic := api.InstanceStateNetwork{Addresses: []api.InstanceStateNetworkAddress{{Family: "inet", Address: "10.0.0.2", Netmask: "24", Scope: "global"}},
			Hwaddr: config["volatile.eth0.hwaddr"], HostName: config["volatile.eth0.host_name"], Mtu: 1500, State: "up", Type: "broadcast"}
		insts[i] = api.InstanceFull{
			Instance: api.Instance{
				InstancePut: api.InstancePut{Architecture: "x86_64", Config: config, Devices: map[string]map[string]string{}, Profiles: []string{"default"}},
				Name:        fmt.Sprintf("c%03d", i), ExpandedConfig: config, Status: "Running", Location: "none", Type: "container", Project: "default",
				ExpandedDevices: map[string]map[string]string{"eth0": {"type": "nic", "network": "berthbr0", "name": "eth0"}, "root": {"type": "disk", "path": "/", "pool": "default"}},
			},
			State: &api.InstanceState{Status: "Running", Pid: int64(1000 + i), Processes: 12,
				Network: map[string]api.InstanceStateNetwork{"eth0": nic, "lo": {Type: "loopback", Mtu: 65536, State: "up"}}},
			Snapshots: []api.InstanceSnapshot{}, Backups: []any{},
		}
	}

	return insts
}

// BenchmarkMarshal60 compares one json.Marshal of 60 running instances with
// marshalMetadata's parts: the wall time a list's client waits for the encoding.
func BenchmarkMarshal60(b *testing.B) {
	insts := benchInstances(60)
	for _, c := range []struct {
		name string
		f    func(any) ([]byte, error)
	}{{"whole", json.Marshal}, {"parts", marshalMetadata}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				_, err := c.f(insts)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type panicking struct{}

func (panicking) MarshalJSON() ([]byte, error) { panic("boom") }

// TestMarshalMetadataPanic checks that an element whose encoding panics panics the
// caller (where net/http recovers a request's panic), not a goroutine of its own.
func TestMarshalMetadataPanic(t *testing.T) {
	prev := runtime.GOMAXPROCS(4)
	defer runtime.GOMAXPROCS(prev)

	list := numbersWith(64, 60, panicking{})
	defer func() {
		if p := recover(); p != "boom" {
			t.Errorf("recovered %v, want the element's panic", p)
		}
	}()

	_, _ = marshalMetadata(list)
	t.Error("no panic")
}
