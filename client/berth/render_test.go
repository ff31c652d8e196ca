package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/units"
)

func TestRenderTable(t *testing.T) {
	var b bytes.Buffer
	err := renderTable(&b, []string{"NAME", "STATE", "IPV4"}, [][]string{
		{"c1", "RUNNING", "10.0.3.5 (eth0)\n10.0.4.1 (eth1)"},
		{"longer-name", "STOPPED", ""},
	})
	if err != nil {
		t.Fatal(err)
	}

	want := `+-------------+---------+-----------------+
|    NAME     |  STATE  |      IPV4       |
+-------------+---------+-----------------+
| c1          | RUNNING | 10.0.3.5 (eth0) |
|             |         | 10.0.4.1 (eth1) |
+-------------+---------+-----------------+
| longer-name | STOPPED |                 |
+-------------+---------+-----------------+
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestRenderTableEmpty(t *testing.T) {
	var b bytes.Buffer
	_ = renderTable(&b, []string{"NAME", "STATE"}, nil)

	want := "+------+-------+\n| NAME | STATE |\n+------+-------+\n"
	if b.String() != want {
		t.Errorf("got:\n%s", b.String())
	}
}

func TestRenderCompactAndCSV(t *testing.T) {
	var b bytes.Buffer
	_ = renderCompact(&b, []string{"NAME", "IPV4"}, [][]string{{"c1", "a\nb"}})
	if b.String() != "NAME  IPV4\nc1    a, b\n" {
		t.Errorf("compact: %q", b.String())
	}

	b.Reset()
	_ = renderCSV(&b, [][]string{{"c1", "a\nb"}, {"c2", ""}})
	if b.String() != "c1,\"a\nb\"\nc2,\n" {
		t.Errorf("csv: %q", b.String())
	}
}

func TestParseColumns(t *testing.T) {
	cols, err := parseColumns(defaultColumns)
	if err != nil {
		t.Fatal(err)
	}

	names := []string{}
	for _, c := range cols {
		names = append(names, c.Name)
	}

	if strings.Join(names, ",") != "NAME,STATE,IPV4,IPV6,TYPE,SNAPSHOTS" {
		t.Errorf("default columns %v", names)
	}

	cols, err = parseColumns("nP,user.role:ROLE:3,config:limits.cpu")
	if err != nil {
		t.Fatal(err)
	}

	if len(cols) != 4 || cols[2].Name != "ROLE" || cols[3].Name != "LIMITS.CPU" {
		t.Fatalf("custom columns %+v", cols)
	}

	inst := api.InstanceFull{Instance: api.Instance{Name: "c1", ExpandedConfig: map[string]string{"user.role": "database", "limits.cpu": "2"}}}
	inst.Profiles = []string{"default", "web"}
	if got := cols[2].Data(inst); got != "dat" {
		t.Errorf("truncated config column = %q", got)
	}

	if got := cols[1].Data(inst); got != "default\nweb" {
		t.Errorf("profiles column = %q", got)
	}

	for _, bad := range []string{"nx", "", "n,,s", "user.a:B:x", "a:b:c:d"} {
		_, err := parseColumns(bad)
		if err == nil {
			t.Errorf("parseColumns(%q) accepted", bad)
		}
	}
}

func runningInstance() api.InstanceFull {
	return api.InstanceFull{
		Instance: api.Instance{Name: "c1", Status: "Running", StatusCode: api.Running, Type: "container"},
		State: &api.InstanceState{Network: map[string]api.InstanceStateNetwork{
			"eth0": {Type: "broadcast", Addresses: []api.InstanceStateNetworkAddress{
				{Family: "inet", Address: "10.0.3.5", Scope: "global"},
				{Family: "inet", Address: "10.0.3.17", Scope: "global"},
				{Family: "inet6", Address: "fd42::5", Scope: "global"},
				{Family: "inet6", Address: "fe80::1", Scope: "link"},
			}},
			"lo": {Type: "loopback", Addresses: []api.InstanceStateNetworkAddress{{Family: "inet", Address: "127.0.0.1", Scope: "local"}}},
		}},
	}
}

func TestAddressColumn(t *testing.T) {
	inst := runningInstance()

	if got := addressColumn(inst, "inet"); got != "10.0.3.5 (eth0)\n10.0.3.17 (eth0)" {
		t.Errorf("IPV4 = %q", got)
	}

	if got := addressColumn(inst, "inet6"); got != "fd42::5 (eth0)" {
		t.Errorf("IPV6 = %q", got)
	}

	inst.StatusCode = api.Stopped
	if got := addressColumn(inst, "inet"); got != "" {
		t.Errorf("stopped IPV4 = %q", got)
	}
}

func TestTypeColumn(t *testing.T) {
	inst := runningInstance()
	inst.Ephemeral = true
	if got := typeColumn(inst); got != "CONTAINER (EPHEMERAL)" {
		t.Errorf("type = %q", got)
	}

	inst.Type = ""
	inst.Ephemeral = false
	if got := typeColumn(inst); got != "CONTAINER" {
		t.Errorf("empty type = %q", got)
	}
}

func TestMatchFilters(t *testing.T) {
	inst := runningInstance()
	inst.Name = "web-1"
	inst.ExpandedConfig = map[string]string{"user.role": "frontend"}

	cases := []struct {
		filters []string
		want    bool
	}{
		{nil, true},
		{[]string{"web"}, true},
		{[]string{"db"}, false},
		{[]string{"w.b-[0-9]"}, true},
		{[]string{"status=running"}, true},
		{[]string{"status=stopped"}, false},
		{[]string{"type=container", "web"}, true},
		{[]string{"user.role=front.*"}, true},
		{[]string{"config.user.role=frontend"}, true},
		{[]string{"user.role=back"}, false},
	}

	for _, c := range cases {
		if got := matchFilters(inst, c.filters); got != c.want {
			t.Errorf("matchFilters(%v) = %v, want %v", c.filters, got, c.want)
		}
	}
}

func TestRenderInfo(t *testing.T) {
	inst := runningInstance()
	inst.Architecture = "x86_64"
	inst.CreatedAt = time.Date(2024, 1, 2, 3, 4, 0, 0, time.UTC)
	inst.State.Pid = 99
	inst.State.Processes = 5
	inst.State.CPU.Usage = 2_500_000_000
	inst.State.Memory.Usage = 3 << 20
	inst.Snapshots = []api.InstanceSnapshot{{Name: "snap0", CreatedAt: inst.CreatedAt}}

	var b bytes.Buffer
	err := renderInfo(&b, &inst)
	if err != nil {
		t.Fatal(err)
	}

	out := b.String()
	for _, want := range []string{
		"Name: c1\n", "Status: RUNNING\n", "Type: container\n", "Architecture: x86_64\n", "PID: 99\n",
		"Created: ", "Resources:\n  Processes: 5\n", "CPU usage (in seconds): 2\n", "Memory (current): 3.00MiB\n",
		"        inet:  10.0.3.5/ (global)\n", "Snapshots:\n", "| snap0 |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("info output lacks %q:\n%s", want, out)
		}
	}

	if strings.Contains(out, "Last Used") || strings.Contains(out, "lo:\n      Type: loopback") == false {
		t.Errorf("unexpected Last Used or missing lo:\n%s", out)
	}
}

func TestByteSizes(t *testing.T) {
	cases := map[string]string{units.Bytes(999): "999B", units.Bytes(1500): "1.50kB", units.BytesIEC(3 << 20): "3.00MiB", units.BytesIEC(512): "512B"}
	for got, want := range cases {
		if got != want {
			t.Errorf("got %q want %q", got, want)
		}
	}
}

func TestProgressLinePlain(t *testing.T) {
	var b bytes.Buffer
	p := newProgressLine(&b)
	p.Update("a", "stage a 1%")
	p.Update("a", "stage a 5%")
	p.Update("b", "stage b")
	p.Done("done")

	if b.String() != "stage a 1%\nstage b\ndone\n" {
		t.Errorf("plain progress %q", b.String())
	}
}

func TestProgressLineTTY(t *testing.T) {
	var b bytes.Buffer
	p := &progressLine{w: &b, tty: true}
	p.Update("a", "long text")
	p.Update("b", "short")
	p.Done("")

	if b.String() != "\rlong text\rshort    \r     \r" {
		t.Errorf("tty progress %q", b.String())
	}
}
