package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/lxd/response"
)

// GET /1.0/instances/{name}/logs
func instanceLogsGet(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")
	_, err := d.instances.Get(r.Context(), name, false)
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponse(true, []string{"/1.0/instances/" + name + "/logs/lxc.log"})
}

// GET /1.0/instances/{name}/logs/lxc.log: the monitor's log (what `lxc info --show-log` reads).
func instanceLogGet(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")
	if pathVar(r, "file") != "lxc.log" {
		return response.NotFound(fmt.Errorf("log file %q not found", pathVar(r, "file")))
	}

	_, err := d.instances.Get(r.Context(), name, false)
	if err != nil {
		return response.SmartError(err)
	}

	path := d.instances.LogPath(name)
	_, err = os.Stat(path)
	if os.IsNotExist(err) {
		return response.RawResponse("lxc.log", 0, time.Time{}, nil, strings.NewReader(""))
	}

	return response.FileResponse(path, "lxc.log", nil)
}
