package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/cluster/forward"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/trust"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/ws"
)

// fakeDirectory is a membership service for the tests: this daemon is member 2 "n2".
type fakeDirectory struct {
	mu      sync.Mutex
	members []forward.Member
	tls     *tls.Config
}

func (f *fakeDirectory) Self() forward.Member { return forward.Member{ID: 2, Name: "n2"} }

func (f *fakeDirectory) Members(context.Context) ([]forward.Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]forward.Member(nil), f.members...), nil
}

func (f *fakeDirectory) ClientTLS() *tls.Config { return f.tls }

func (f *fakeDirectory) IsMember(c trust.Caller) bool { return c.Member }

func (f *fakeDirectory) setOnline(id int64, online bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.members {
		if f.members[i].ID == id {
			f.members[i].Online = online
		}
	}
}

// remoteMember is member 1 "n1" as seen from n2: it records what reaches it and
// answers for its instance c1.
type remoteMember struct {
	mu    sync.Mutex
	seen  []string // "METHOD URI forwarded=X caller=Y"
	srv   *httptest.Server
	lists []string // the instances its lists name; nil: c1
}

// listing sets the instances n1's lists name.
func (rm *remoteMember) listing(names ...string) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.lists = names
}

func (rm *remoteMember) log() []string {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return append([]string(nil), rm.seen...)
}

func (rm *remoteMember) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	line := fmt.Sprintf("%s %s forwarded=%s caller=%s", r.Method, r.URL.RequestURI(), r.Header.Get(forward.HeaderForwarded), r.Header.Get(forward.HeaderCaller))
	if r.Method == http.MethodPost {
		body, _ := io.ReadAll(r.Body)
		line += " body=" + string(body)
	}

	rm.mu.Lock()
	rm.seen = append(rm.seen, line)
	rm.mu.Unlock()
	sync := func(md any) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Remote", "n1")
		_ = json.NewEncoder(w).Encode(map[string]any{"type": "sync", "status": "Success", "status_code": 200, "metadata": md})
	}

	switch {
	case r.URL.Path == "/1.0/instances" && r.Method == http.MethodGet:
		rm.mu.Lock()
		lists := rm.lists
		rm.mu.Unlock()
		if lists == nil {
			lists = []string{"c1"}
		}

		objs, full, urls := []api.Instance{}, []api.InstanceFull{}, []string{}
		for _, n := range lists {
			inst := api.Instance{Name: n, Status: "Running", StatusCode: api.Running, Location: "n1", Project: "default"}
			objs = append(objs, inst)
			full = append(full, api.InstanceFull{Instance: inst, State: &api.InstanceState{Status: "Running", StatusCode: api.Running}})
			urls = append(urls, "/1.0/instances/"+n)
		}

		switch r.URL.Query().Get("recursion") {
		case "1":
			sync(objs)
		case "2":
			sync(full)
		default:
			sync(urls)
		}
	case r.URL.Path == "/1.0/instances" && r.Method == http.MethodPost:
		w.Header().Set("Location", "/1.0/operations/op-remote-1")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"type":"async","operation":"/1.0/operations/op-remote-1"}`))
	case strings.HasSuffix(r.URL.Path, "/websocket") && r.URL.Query().Get("secret") == "s3cret":
		conn, err := ws.Upgrade(w, r)
		if err != nil {
			return
		}

		defer func() { _ = conn.Close() }()
		for {
			typ, data, err := conn.ReadMessage()
			if err != nil {
				return
			}

			_ = conn.WriteMessage(typ, append([]byte("n1:"), data...))
		}
	case r.URL.Path == "/1.0/operations":
		if r.URL.Query().Get("recursion") == "1" {
			sync(map[string][]api.Operation{"running": {{ID: "op-r1", Status: "Running", Location: "n1"}}})
			return
		}

		sync(map[string][]string{"running": {"/1.0/operations/op-r1"}})
	case strings.HasPrefix(r.URL.Path, "/1.0/operations/op-unknown"):
		http.Error(w, `{"type":"error","error_code":404,"error":"not found"}`, http.StatusNotFound)
	default:
		sync(map[string]string{"answered_by": "n1", "path": r.URL.Path})
	}
}

// clusterTestDaemon is a fake daemon clustered as n2, with member n1 remote and the
// instance c1 recorded on n1 (local1 is n2's), served on a unix socket.
func clusterTestDaemon(t *testing.T) (*Daemon, *fakeDirectory, *remoteMember, *http.Client) {
	t.Helper()
	cfg := fakeConfig{Dir: t.TempDir()}
	for _, n := range []string{"local1", "c1"} {
		cfg.Instances = append(cfg.Instances, struct {
			Name   string `json:"name"`
			Status string `json:"status"`
		}{n, "Running"})
	}

	ctx := context.Background()
	d, err := newFakeDaemon(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = d.db.Close() })
	err = d.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.CreateInstance(ctx, db.Instance{Name: "c1", Type: "container", Architecture: "x86_64", MemberID: 1})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	rm := &remoteMember{}
	rm.srv = httptest.NewTLSServer(rm)
	t.Cleanup(rm.srv.Close)
	dir := &fakeDirectory{
		tls: rm.srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone(),
		members: []forward.Member{
			{ID: 1, Name: "n1", Address: rm.srv.Listener.Addr().String(), Online: true},
			{ID: 2, Name: "n2", Address: "127.0.0.1:1", Online: true},
		},
	}

	d.startForwarding(dir, nil)
	t.Cleanup(d.stopForwarding)

	sock := filepath.Join(cfg.Dir, "unix.socket")
	l, err := listenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}

	srv := d.unixServer()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}

	return d, dir, rm, client
}

func call(t *testing.T, c *http.Client, method, path string, header map[string]string) (*http.Response, api.Response) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://berthd"+path, strings.NewReader("{}"))
	for k, v := range header {
		req.Header.Set(k, v)
	}

	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = resp.Body.Close() }()
	var env api.Response
	data, _ := io.ReadAll(resp.Body)
	err = json.Unmarshal(data, &env)
	if err != nil {
		t.Fatalf("%s %s: not an API envelope: %q", method, path, data)
	}

	return resp, env
}

// TestClusterForwardsInstanceRequests: a request for an instance on another member
// is relayed there with the relay headers (which a client cannot forge), answered
// unchanged; one for a local instance is not; a create with ?target= goes to the
// target, and the operation it made is reached through this member too.
func TestClusterForwardsInstanceRequests(t *testing.T) {
	_, _, rm, c := clusterTestDaemon(t)

	resp, env := call(t, c, http.MethodGet, "/1.0/instances/c1/state?x=1", map[string]string{
		forward.HeaderForwarded: "forged", forward.HeaderCaller: "forged-fp",
	})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Remote") != "n1" || !strings.Contains(string(env.Metadata), `"answered_by":"n1"`) {
		t.Fatalf("c1's state: %d %v %s", resp.StatusCode, resp.Header, env.Metadata)
	}

	resp, _ = call(t, c, http.MethodGet, "/1.0/instances/local1", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Remote") != "" {
		t.Fatalf("local1 was not answered here: %d %v", resp.StatusCode, resp.Header)
	}

	resp, env = call(t, c, http.MethodPost, "/1.0/instances?target=n1", nil)
	if resp.StatusCode != http.StatusAccepted || env.Operation != "/1.0/operations/op-remote-1" {
		t.Fatalf("create on n1: %d %+v", resp.StatusCode, env)
	}

	for _, p := range []string{"/1.0/operations/op-remote-1/wait?timeout=5", "/1.0/operations/op-remote-2"} {
		resp, _ = call(t, c, http.MethodGet, p, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Remote") != "n1" {
			t.Errorf("%s was not routed to n1: %d", p, resp.StatusCode)
		}
	}

	resp, _ = call(t, c, http.MethodGet, "/1.0/operations/op-unknown", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("an operation no member has: %d", resp.StatusCode)
	}

	resp, env = call(t, c, http.MethodPost, "/1.0/instances?target=n9", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(env.Error, `"n9"`) {
		t.Errorf("create on an unknown member: %d %q", resp.StatusCode, env.Error)
	}

	want := []string{
		"GET /1.0/instances/c1/state?x=1 forwarded=n2 caller=admin",
		"POST /1.0/instances?target=n1 forwarded=n2 caller=admin body={}",
		"GET /1.0/operations/op-remote-1/wait?timeout=5 forwarded=n2 caller=admin",
		"GET /1.0/operations/op-remote-2 forwarded=n2 caller=admin", // the probe
		"GET /1.0/operations/op-remote-2 forwarded=n2 caller=admin",
		"GET /1.0/operations/op-unknown forwarded=n2 caller=admin",
	}
	var got []string
	events := false
	for _, l := range rm.log() {
		if strings.HasPrefix(l, "GET /1.0/events?") {
			// The event relay's subscription, relayed as an administrator's.
			events = events || l == "GET /1.0/events?all-projects=true forwarded=n2 caller=admin"
			continue
		}

		got = append(got, l)
	}

	if !events {
		t.Errorf("n2 did not subscribe to n1's events: %q", rm.log())
	}

	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("n1 saw:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestClusterListFansOut: GET /1.0/instances through n2 lists n2's own instances and
// n1's as n1 reports them, sorted, at every recursion; with n1 down its instances are
// still listed from the database, status Error at location n1, within the deadline;
// a relayed list is n2's own only.
func TestClusterListFansOut(t *testing.T) {
	_, dir, rm, c := clusterTestDaemon(t)
	type row struct {
		Name     string `json:"name"`
		Status   string `json:"status"`
		Location string `json:"location"`
	}

	list := func(rec string, header map[string]string) ([]row, time.Duration) {
		t.Helper()
		start := time.Now()
		resp, env := call(t, c, http.MethodGet, "/1.0/instances?recursion="+rec, header)
		took := time.Since(start)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("list: %d %s", resp.StatusCode, env.Error)
		}

		var rows []row
		if rec == "0" {
			var urls []string
			_ = json.Unmarshal(env.Metadata, &urls)
			for _, u := range urls {
				rows = append(rows, row{Name: u})
			}
		} else {
			_ = json.Unmarshal(env.Metadata, &rows)
		}

		return rows, took
	}

	for _, rec := range []string{"1", "2"} {
		rows, _ := list(rec, nil)
		want := []row{{"c1", "Running", "n1"}, {"local1", "Running", "n2"}}
		if fmt.Sprint(rows) != fmt.Sprint(want) {
			t.Errorf("recursion=%s: %v, want %v", rec, rows, want)
		}
	}

	rows, _ := list("0", nil)
	if fmt.Sprint(rows) != fmt.Sprint([]row{{Name: "/1.0/instances/c1"}, {Name: "/1.0/instances/local1"}}) {
		t.Errorf("recursion=0: %v", rows)
	}

	n := len(rm.log())
	rows, _ = list("1", map[string]string{forward.HeaderForwarded: "n1"})
	if len(rows) != 2 || len(rm.log()) < n+1 {
		// A client is no member: its header is stripped, the list is the whole one.
		t.Errorf("a client's forged relay header was honoured: %v", rows)
	}

	rm.srv.Close()
	rows, took := list("2", nil)
	want := []row{{"c1", "Error", "n1"}, {"local1", "Running", "n2"}}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("with n1 down: %v, want %v", rows, want)
	}

	if took > forward.FanoutTimeout+time.Second {
		t.Errorf("list with n1 down took %v", took)
	}

	t.Logf("list with n1 down (refused) answered in %v", took)

	resp, env := call(t, c, http.MethodGet, "/1.0/instances/c1", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(env.Error, "member n1 (") || !strings.Contains(env.Error, "is unreachable") {
		t.Errorf("c1 with n1 down: %d %q", resp.StatusCode, env.Error)
	}

	// A blackholed member (connections accepted by the kernel, never answered): the
	// list still comes within the deadline.
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = hole.Close() })
	dir.mu.Lock()
	dir.members[0].Address = hole.Addr().String()
	dir.mu.Unlock()
	rows, took = list("1", nil)
	if fmt.Sprint(rows) != fmt.Sprint([]row{{"c1", "Error", "n1"}, {"local1", "Running", "n2"}}) || took > forward.FanoutTimeout+time.Second {
		t.Errorf("with n1 blackholed: %v in %v", rows, took)
	}

	t.Logf("list with n1 blackholed answered in %v", took)

	dir.setOnline(1, false)
	resp, env = call(t, c, http.MethodGet, "/1.0/instances/c1", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.HasSuffix(env.Error, "is offline") {
		t.Errorf("c1 with n1 offline: %d %q", resp.StatusCode, env.Error)
	}
}

// TestRelayedCaller: the relay headers count only from a member; from one, the caller
// is the one it names, with that caller's trust.
func TestRelayedCaller(t *testing.T) {
	d, _, _, _ := clusterTestDaemon(t)
	member := trust.Caller{Via: trust.ViaTLS, Fingerprint: "cluster-cert", UID: -1, PID: -1, Trusted: true, Member: true}
	client := trust.Caller{Via: trust.ViaTLS, Fingerprint: "client", UID: -1, PID: -1}
	req := func(caller string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/1.0/instances", nil)
		r.Header.Set(forward.HeaderForwarded, "n1")
		r.Header.Set(forward.HeaderCaller, caller)
		return r
	}

	r := req(forward.CallerAdmin)
	if c := d.relayedCaller(client, r); c.Fingerprint != "client" || c.Admin() || forward.IsForwarded(r) || r.Header.Get(forward.HeaderCaller) != "" {
		t.Errorf("a client's relay headers were honoured: %v, forwarded %v", c, forward.IsForwarded(r))
	}

	if c := d.relayedCaller(member, req(forward.CallerAdmin)); !c.Admin() {
		t.Errorf("admin through a member: %v", c)
	}

	if c := d.relayedCaller(member, req(forward.CallerUntrusted)); c.Trusted || c.Admin() {
		t.Errorf("untrusted through a member: %v", c)
	}

	if c := d.relayedCaller(member, req("unknown-fp")); c.Trusted || c.Fingerprint != "unknown-fp" {
		t.Errorf("unknown certificate through a member: %v", c)
	}

	d.forward = nil // unclustered: nobody is a member
	r = req(forward.CallerAdmin)
	if c := d.relayedCaller(member, r); c.String() != member.String() || forward.IsForwarded(r) || r.Header.Get(forward.HeaderCaller) != "" {
		t.Errorf("relay headers honoured on a host that is not clustered: %v", c)
	}
}

// TestClusterForwardsWebsocket: an operation websocket (exec, console) of an operation
// on another member is relayed through the router both ways.
func TestClusterForwardsWebsocket(t *testing.T) {
	d, _, _, _ := clusterTestDaemon(t)
	d.forward.ops.Add("op-exec", forward.Member{ID: 1, Name: "n1", Address: d.forward.dir.(*fakeDirectory).members[0].Address, Online: true})
	sock := filepath.Join(d.dir, "unix.socket")
	dialer := ws.NewDialer(ws.DialConfig{Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := dialer.Dial(ctx, "ws://berthd/1.0/operations/op-exec/websocket?secret=s3cret", nil)
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = conn.Close() }()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for _, msg := range []string{"stdin data", "more"} {
		err = conn.WriteMessage(2, []byte(msg))
		if err != nil {
			t.Fatal(err)
		}

		_, data, err := conn.ReadMessage()
		if err != nil || string(data) != "n1:"+msg {
			t.Fatalf("relayed websocket: %q %v", data, err)
		}
	}

	_, err = dialer.Dial(ctx, "ws://berthd/1.0/operations/op-exec/websocket?secret=wrong", nil)
	if err == nil {
		t.Fatal("a websocket with a wrong secret was relayed as accepted")
	}
}

// TestClusterListDuringMove: an instance moving between members is listed once even
// when the members read their rows on either side of the move's commit: n1 (the owner
// by this member's read) answers without c1, or with local1 (this member's) too.
func TestClusterListDuringMove(t *testing.T) {
	_, _, rm, c := clusterTestDaemon(t)
	for _, lists := range [][]string{{}, {"c1", "local1"}, {"local1"}} {
		rm.listing(lists...)
		for _, rec := range []string{"0", "1", "2"} {
			_, env := call(t, c, http.MethodGet, "/1.0/instances?recursion="+rec, nil)
			var got []string
			if rec == "0" {
				_ = json.Unmarshal(env.Metadata, &got)
			} else {
				var rows []struct{ Name string }
				_ = json.Unmarshal(env.Metadata, &rows)
				for _, r := range rows {
					got = append(got, r.Name)
				}
			}

			want := []string{"c1", "local1"}
			if rec == "0" {
				want = []string{"/1.0/instances/c1", "/1.0/instances/local1"}
			}

			if !slices.Equal(got, want) {
				t.Errorf("n1 listing %v, recursion=%s: %v, want each once: %v", lists, rec, got, want)
			}
		}
	}
}

// TestClusterRelayedListIsLocal: a list a member relays is answered with this member's
// instances only (no fan-out from there: no loop).
func TestClusterRelayedListIsLocal(t *testing.T) {
	d, _, rm, _ := clusterTestDaemon(t)
	list, err := d.instances.List(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}

	r := httptest.NewRequest(http.MethodGet, "/1.0/instances", nil)
	r.Header.Set(forward.HeaderForwarded, "n1")
	n := len(rm.log())
	out, answers, _, err := d.instancesAcrossMembers(r, list)
	if err != nil {
		t.Fatal(err)
	}

	if len(out) != 1 || out[0].Name != "local1" || out[0].Location != "n2" || len(answers) != 0 {
		t.Errorf("relayed list: %v, %d answers", out, len(answers))
	}

	for _, l := range rm.log()[n:] {
		if strings.HasPrefix(l, "GET /1.0/instances") {
			t.Errorf("a relayed list was fanned out again: %s", l)
		}
	}
}

// TestClusterOperationsList: the operation list shows the other members' operations
// too, and their URLs are then routed to their member.
func TestClusterOperationsList(t *testing.T) {
	d, _, _, c := clusterTestDaemon(t)
	_, env := call(t, c, http.MethodGet, "/1.0/operations", nil)
	if string(env.Metadata) != `{"running":["/1.0/operations/op-r1"]}` {
		t.Errorf("operations: %s", env.Metadata)
	}

	_, env = call(t, c, http.MethodGet, "/1.0/operations?recursion=1", nil)
	var objs map[string][]api.Operation
	_ = json.Unmarshal(env.Metadata, &objs)
	if len(objs["running"]) != 1 || objs["running"][0].ID != "op-r1" || objs["running"][0].Location != "n1" {
		t.Errorf("operations, recursion 1: %s", env.Metadata)
	}

	if m, ok := d.forward.ops.Lookup("op-r1"); !ok || m.Name != "n1" {
		t.Errorf("op-r1 not routed to n1: %v %v", m, ok)
	}
}

// TestClusterPlacement: a create without ?target= goes where placement says, with the
// choice as ?target=; a target placement refuses is refused here, with its error.
func TestClusterPlacement(t *testing.T) {
	d, _, rm, c := clusterTestDaemon(t)
	d.forward.place = func(_ context.Context, target string) (string, error) {
		switch target {
		case "":
			return "n1", nil
		case "n1", "n2":
			return target, nil
		}

		return "", api.StatusErrorf(http.StatusBadRequest, "cluster member %q is evacuated", target)
	}

	resp, _ := call(t, c, http.MethodPost, "/1.0/instances?project=default", nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("placed create: %d", resp.StatusCode)
	}

	found := false
	for _, l := range rm.log() {
		found = found || l == "POST /1.0/instances?project=default&target=n1 forwarded=n2 caller=admin body={}"
	}

	if !found {
		t.Errorf("the placed create did not reach n1 with its target: %q", rm.log())
	}

	resp, env := call(t, c, http.MethodPost, "/1.0/instances?target=n3", nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(env.Error, `"n3" is evacuated`) {
		t.Errorf("create on a refused target: %d %q", resp.StatusCode, env.Error)
	}
}
