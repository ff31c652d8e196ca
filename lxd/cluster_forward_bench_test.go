package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/lxd/cluster/forward"
	"github.com/berth-dev/berth/shared/api"
)

// listBench is `lxc list` (GET /1.0/instances?recursion=2) of 100 running instances
// through one member: 34 of them here, 33 on each of two other members (TLS servers
// answering their part at once, so the figure is the fan-out's own cost), or all 100
// here on a host that is not clustered (the baseline).
func listBench(b *testing.B, clustered bool) {
	cfg := fakeConfig{Dir: b.TempDir()}
	local := 100
	if clustered {
		local = 34
	}

	for i := range local {
		cfg.Instances = append(cfg.Instances, struct {
			Name   string `json:"name"`
			Status string `json:"status"`
		}{fmt.Sprintf("c%03d", i), "Running"})
	}

	ctx := context.Background()
	d, err := newFakeDaemon(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}

	b.Cleanup(func() { _ = d.db.Close() })
	if clustered {
		dir := &fakeDirectory{members: []forward.Member{{ID: 2, Name: "n2", Online: true}}}
		for m := range 2 {
			var part []api.InstanceFull
			for i := range 33 {
				inst := newFakeInstance(fmt.Sprintf("c%03d", 34+33*m+i), nil, false)
				setFakeStatus(inst, "Running")
				inst.Location = fmt.Sprintf("n%d", 3+m)
				part = append(part, *inst)
			}

			body, _ := json.Marshal(map[string]any{"type": "sync", "status": "Success", "status_code": 200, "metadata": part})
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(body)
			}))
			b.Cleanup(srv.Close)
			dir.tls = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
			dir.members = append(dir.members, forward.Member{ID: int64(3 + m), Name: fmt.Sprintf("n%d", 3+m), Address: srv.Listener.Addr().String(), Online: true})
		}

		d.startForwarding(dir, nil)
		b.Cleanup(d.stopForwarding)
	}

	sock := filepath.Join(cfg.Dir, "unix.socket")
	l, err := listenUnix(sock)
	if err != nil {
		b.Fatal(err)
	}

	srv := d.unixServer()
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(func() { _ = srv.Close() })
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}

	b.ResetTimer()
	for range b.N {
		resp, err := client.Get("http://berthd/1.0/instances?recursion=2")
		if err != nil {
			b.Fatal(err)
		}

		var env struct {
			Metadata []api.InstanceFull `json:"metadata"`
		}

		err = json.NewDecoder(resp.Body).Decode(&env)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if err != nil || len(env.Metadata) != 100 {
			b.Fatalf("listed %d instances: %v", len(env.Metadata), err)
		}
	}
}

func BenchmarkList100Single(b *testing.B)    { listBench(b, false) }
func BenchmarkList100Clustered(b *testing.B) { listBench(b, true) }
