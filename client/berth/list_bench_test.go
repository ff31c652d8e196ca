package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// listFixture is the recursion=2 envelope of n running instances, each a copy of
// testdata/list-instance.json (one container of the test image as berthd answered it,
// with its NIC's addresses and counters) under its own name, addresses and MAC.
func listFixture(tb testing.TB, n int) []byte {
	tb.Helper()

	data, err := os.ReadFile("testdata/list-instance.json")
	if err != nil {
		tb.Fatal(err)
	}

	insts := make([]api.InstanceFull, 0, n)
	for i := range n {
		inst := api.InstanceFull{}
		err = json.Unmarshal(data, &inst)
		if err != nil {
			tb.Fatal(err)
		}

		mac := fmt.Sprintf("00:16:3e:54:%02x:%02x", i/256, i%256)
		inst.Name = fmt.Sprintf("c%03d", i)
		inst.ExpandedConfig["volatile.eth0.hwaddr"] = mac
		inst.ExpandedConfig["volatile.eth0.host_name"] = fmt.Sprintf("veth%08x", i)
		inst.ExpandedConfig["volatile.uuid"] = fmt.Sprintf("0b4d86a4-839a-460f-8205-a4a92dfe%04x", i)
		eth0 := inst.State.Network["eth0"]
		eth0.Hwaddr = mac
		eth0.Addresses[0].Address = fmt.Sprintf("10.116.%d.%d", 180+i/250, 2+i%250)
		eth0.Addresses[1].Address = fmt.Sprintf("fdae:39f4:2db5:544:216:3eff:fe54:%x", i)
		inst.State.Network["eth0"] = eth0
		inst.State.Pid = int64(100000 + i)
		insts = append(insts, inst)
	}

	body, err := json.Marshal(map[string]any{"type": "sync", "status": "Success", "status_code": 200, "metadata": insts})
	if err != nil {
		tb.Fatal(err)
	}

	return body
}

// serveList answers GET /1.0 (an unclustered server) and GET /1.0/instances with body
// on a unix socket, as berthd would; it returns the socket's path and counts what the
// instances requests asked for in queries.
func serveList(tb testing.TB, body []byte, queries *[]string) string {
	tb.Helper()

	sock := filepath.Join(tb.TempDir(), "unix.socket")
	l, err := net.Listen("unix", sock)
	if err != nil {
		tb.Fatal(err)
	}

	server, _ := json.Marshal(map[string]any{"type": "sync", "status": "Success", "status_code": 200,
		"metadata": api.Server{Environment: api.ServerEnvironment{ServerName: "bench"}}})
	mux := http.NewServeMux()
	mux.HandleFunc("/1.0", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(server)
	})
	var mu sync.Mutex
	answers := map[string][]byte{"": body} // by ?omit=, made once each
	mux.HandleFunc("/1.0/instances", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if queries != nil {
			*queries = append(*queries, r.URL.RawQuery)
		}

		omit := r.URL.Query().Get("omit")
		answer, ok := answers[omit]
		if !ok {
			answer = omitFrom(tb, body, omit)
			answers[omit] = answer
		}

		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(answer))) // as berthd's answers
		_, _ = w.Write(answer)
	})

	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(l) }()
	tb.Cleanup(func() { _ = srv.Close() })

	return sock
}

// omitFrom is body as berthd answers ?omit=: the named parts of each instance null.
func omitFrom(tb testing.TB, body []byte, omit string) []byte {
	env := map[string]json.RawMessage{}
	insts := []map[string]json.RawMessage{}
	if json.Unmarshal(body, &env) != nil || json.Unmarshal(env["metadata"], &insts) != nil {
		tb.Errorf("the fixture is not a list")
		return body
	}

	for _, part := range strings.Split(omit, ",") {
		for _, inst := range insts {
			inst[part], inst["expanded_"+part] = json.RawMessage("null"), json.RawMessage("null")
		}
	}

	env["metadata"], _ = json.Marshal(insts)
	out, _ := json.Marshal(env)
	return out
}

// benchmarkList is `berth list` (default columns, table) of n running instances within
// one process: the requests over a unix socket, the decoding and the rendering; a new
// app each time, as each command is a new process.
func benchmarkList(b *testing.B, n int) {
	sock := serveList(b, listFixture(b, n), nil)
	confDir := b.TempDir()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		a := &app{out: io.Discard, errOut: io.Discard, socket: sock, confDir: confDir}
		err := a.list(context.Background(), nil, formatTable, defaultColumns)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkList1(b *testing.B)   { benchmarkList(b, 1) }
func BenchmarkList10(b *testing.B)  { benchmarkList(b, 10) }
func BenchmarkList60(b *testing.B)  { benchmarkList(b, 60) }
func BenchmarkList500(b *testing.B) { benchmarkList(b, 500) }

// BenchmarkListDecode500 is the decoding alone of a 500-instance answer.
func BenchmarkListDecode500(b *testing.B) {
	body := listFixture(b, 500)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		env := struct {
			Metadata []api.InstanceFull `json:"metadata"`
		}{}

		err := json.Unmarshal(body, &env)
		if err != nil || len(env.Metadata) != 500 {
			b.Fatal(len(env.Metadata), err)
		}
	}
}

// TestListFixture checks that the fixture lists as berthd's answer would: every
// instance running with its IPv4 and global IPv6 address.
func TestListFixture(t *testing.T) {
	var queries []string
	sock := serveList(t, listFixture(t, 3), &queries)
	var out strings.Builder
	a := &app{out: &out, errOut: io.Discard, socket: sock, confDir: t.TempDir()}
	err := a.list(context.Background(), nil, formatCSV, defaultColumns)
	if err != nil {
		t.Fatal(err)
	}

	want := `c000,RUNNING,10.116.180.2 (eth0),fdae:39f4:2db5:544:216:3eff:fe54:0 (eth0),CONTAINER,0
c001,RUNNING,10.116.180.3 (eth0),fdae:39f4:2db5:544:216:3eff:fe54:1 (eth0),CONTAINER,0
c002,RUNNING,10.116.180.4 (eth0),fdae:39f4:2db5:544:216:3eff:fe54:2 (eth0),CONTAINER,0
`
	if out.String() != want {
		t.Errorf("listed\n%s\nwant\n%s", out.String(), want)
	}

	if len(queries) != 1 {
		t.Errorf("asked for instances %d times (%q), want once", len(queries), queries)
	}
}

// TestListOmits checks what `berth list` asks the server to leave out of the instances:
// the config and devices no column, filter or format reads.
func TestListOmits(t *testing.T) {
	var queries []string
	sock := serveList(t, listFixture(t, 2), &queries)
	a := &app{out: io.Discard, errOut: io.Discard, socket: sock, confDir: t.TempDir()}
	for _, tc := range []struct {
		format, columns string
		filters         []string
		query           string
	}{
		{formatTable, defaultColumns, nil, "filter=&recursion=2&omit=config%2Cdevices"},
		{formatCSV, "ns", []string{"c0", "status=running"}, "filter=&recursion=2&omit=config%2Cdevices"},
		{formatTable, "n,user.role", nil, "filter=&recursion=2&omit=devices"},
		{formatTable, "ns", []string{"user.role=web"}, "filter=&recursion=2&omit=devices"},
		{formatTable, "nsf", nil, "filter=&recursion=2&omit=devices"},
		{formatTable, "nD", nil, "filter=&recursion=2&omit=config"},
		{formatTable, "nbF", nil, "filter=&recursion=2"},
		{formatJSON, defaultColumns, nil, "filter=&recursion=2"},
		{formatYAML, defaultColumns, nil, "filter=&recursion=2"},
	} {
		queries = nil
		err := a.list(context.Background(), tc.filters, tc.format, tc.columns)
		if err != nil {
			t.Fatalf("-f %s -c %s %v: %v", tc.format, tc.columns, tc.filters, err)
		}

		if len(queries) != 1 || queries[0] != tc.query {
			t.Errorf("-f %s -c %s %v asked %q, want %q", tc.format, tc.columns, tc.filters, queries, tc.query)
		}
	}
}

// benchmarkListProcess runs the berth binary ($BERTH_BIN, else bin/berth of the
// checkout: `make build` first) as `berth list` against a server replaying n running
// instances: the whole command as a user pays it, process start included. It reports
// the child's CPU time (user+system) per run beside the wall time.
func benchmarkListProcess(b *testing.B, n int, args ...string) {
	bin := os.Getenv("BERTH_BIN")
	if bin == "" {
		bin = "../../bin/berth"
	}

	if _, err := os.Stat(bin); err != nil {
		b.Fatalf("no berth binary (make build, or set BERTH_BIN): %v", err)
	}

	sock := serveList(b, listFixture(b, n), nil)
	env := append(os.Environ(), "BERTH_SOCKET="+sock, "HOME="+b.TempDir(), "XDG_CONFIG_HOME=")
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		cmd := exec.Command(bin, append([]string{"list"}, args...)...)
		cmd.Env = env
		var stderr strings.Builder
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		err := cmd.Run()
		if err != nil {
			b.Fatalf("%v: %s", err, stderr.String())
		}

		cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}

	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

func BenchmarkListProcess1(b *testing.B)   { benchmarkListProcess(b, 1) }
func BenchmarkListProcess60(b *testing.B)  { benchmarkListProcess(b, 60) }
func BenchmarkListProcess500(b *testing.B) { benchmarkListProcess(b, 500) }

// TestListRecordMatchesFull checks that the lean decoding of `berth list` renders every
// column as the full api.InstanceFull does, with the needs listNeeds finds.
func TestListRecordMatchesFull(t *testing.T) {
	var env struct {
		Metadata []json.RawMessage `json:"metadata"`
	}

	err := json.Unmarshal(listFixture(t, 2), &env)
	if err != nil {
		t.Fatal(err)
	}

	// A snapshot, a config key and a disk usage, so that every column has something.
	inst := api.InstanceFull{}
	_ = json.Unmarshal(env.Metadata[1], &inst)
	inst.Snapshots = []api.InstanceSnapshot{{Name: "snap0"}}
	inst.ExpandedConfig["user.role"] = "web"
	inst.State.Disk = map[string]api.InstanceStateDisk{"root": {Usage: 5 << 20}}
	env.Metadata[1], _ = json.Marshal(inst)
	body, _ := json.Marshal(map[string]any{"type": "sync", "metadata": env.Metadata})

	sock := serveList(t, body, nil)
	a := &app{out: io.Discard, errOut: io.Discard, socket: sock, confDir: t.TempDir()}
	c, _, err := a.target("")
	if err != nil {
		t.Fatal(err)
	}

	full, err := c.GetInstancesFull(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	for _, columns := range []string{defaultColumns, "nsacldfFpNPmuDbeL", "n,user.role:ROLE", "nD", "nb"} {
		cols, err := parseColumns(columns)
		if err != nil {
			t.Fatal(err)
		}

		lean, err := getListInstances(context.Background(), c, listNeeds(columns, nil))
		if err != nil {
			t.Fatal(err)
		}

		_, want := instanceRows(full, cols)
		_, got := instanceRows(lean, cols)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("columns %q: lean rows %q, full rows %q", columns, got, want)
		}
	}

	// A KEY=VALUE filter on a config key reads the config.
	lean, err := getListInstances(context.Background(), c, listNeeds(defaultColumns, []string{"user.role=web"}))
	if err != nil {
		t.Fatal(err)
	}

	if matchFilters(lean[0], []string{"user.role=web"}) || !matchFilters(lean[1], []string{"user.role=web"}) {
		t.Errorf("filter user.role=web on the lean records: %v, %v; want false, true",
			matchFilters(lean[0], []string{"user.role=web"}), matchFilters(lean[1], []string{"user.role=web"}))
	}
}
