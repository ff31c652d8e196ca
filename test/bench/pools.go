package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"
)

// benchPools measures launch to systemd "running" on a loop-file btrfs pool against the
// default pool (overlay where the host can mount it), the two interleaved, after a first
// launch on the btrfs pool that unpacks the image there (reported on its own). Failures
// are reported as notes.
func benchPools(b *berthd, r *report) {
	err := benchPoolsRun(b, r)
	if err != nil {
		r.note("pools: %v", err)
	}
}

func benchPoolsRun(b *berthd, r *report) error {
	const pool = "benchbt"
	var def struct {
		Driver string `json:"driver"`
	}

	err := b.apiCall("GET", "/1.0/storage-pools/default", "", &def)
	if err != nil {
		return err
	}

	err = b.apiCall("POST", "/1.0/storage-pools", `{"name": "`+pool+`", "driver": "btrfs", "config": {"size": "8GiB"}}`, nil)
	if err != nil {
		return err
	}

	defer func() {
		err := b.apiCall("DELETE", "/1.0/storage-pools/"+pool, "", nil)
		if err != nil {
			r.note("pools: deleting %s: %v", pool, err)
		}
	}()

	launch := func(name, onPool string) (time.Duration, error) {
		args := []string{"launch", "debian/12", name}
		if onPool != "" {
			args = append(args, "-s", onPool)
		}

		t0 := time.Now()
		_, err := b.berth(args...)
		if err == nil {
			_, err = b.waitInstance(name)
		}

		d := time.Since(t0)
		_, _ = b.berth("delete", "-f", name)
		return d, err
	}

	d, err := launch("plfirst", pool)
	if err != nil {
		return err
	}

	r.add("first launch on btrfs pool (image unpacked there)", d)
	rowDefault := fmt.Sprintf("launch -> running, default pool (%s)", def.Driver)
	rowBtrfs := "launch -> running, btrfs pool (loop file)"
	r.reserve(rowDefault, rowBtrfs)
	for i := range *runs {
		for _, c := range []struct{ row, pool string }{{rowDefault, ""}, {rowBtrfs, pool}} {
			d, err := launch(fmt.Sprintf("pl%d%s", i, c.pool), c.pool)
			if err != nil {
				return err
			}

			r.add(c.row, d)
		}
	}

	r.note("pools: a btrfs pool's instances are subvolumes (root disk sizes enforced by qgroups) holding an overlay upper layer over the pool's image where the host can mount one, else a shifted copy of the image")
	return nil
}

// apiCall sends one request to the daemon's unix socket and decodes the response's
// metadata into out (when not nil); an error response or a failed operation is an error.
func (b *berthd) apiCall(method, path, body string, out any) error {
	sock := filepath.Join(b.dir, "unix.socket")
	c := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}

	req, err := http.NewRequest(method, "http://berth"+path, strings.NewReader(body))
	if err != nil {
		return err
	}

	resp, err := c.Do(req)
	if err != nil {
		return err
	}

	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}

	var env struct {
		Type     string          `json:"type"`
		Error    string          `json:"error"`
		Metadata json.RawMessage `json:"metadata"`
	}

	err = json.Unmarshal(data, &env)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}

	if env.Type == "error" || resp.StatusCode >= 400 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, env.Error)
	}

	if out == nil || len(env.Metadata) == 0 {
		return nil
	}

	return json.Unmarshal(env.Metadata, out)
}
