package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/lxd/response"
)

// monitorLog is the name under which the monitor's log is served, as LXD's
// liblxc log (what `lxc info --show-log` reads).
const monitorLog = "lxc.log"

// GET /1.0/instances/{name}/logs: lxc.log and the record-output files of
// detached execs.
func instanceLogsGet(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")

	err := d.instances.Exists(r.Context(), name)
	if err != nil {
		return response.SmartError(err)
	}

	files, err := d.instances.ExecOutputs(name)
	if err != nil {
		return response.InternalError(err)
	}

	urls := []string{instanceURL(r, name) + "/logs/" + monitorLog}
	for _, f := range files {
		urls = append(urls, instanceURL(r, name)+"/logs/"+f)
	}

	return response.SyncResponse(true, urls)
}

// GET /1.0/instances/{name}/logs/{file}
func instanceLogGet(d *Daemon, r *http.Request) response.Response {
	name, file := pathVar(r, "name"), pathVar(r, "file")

	err := d.instances.Exists(r.Context(), name)
	if err != nil {
		return response.SmartError(err)
	}

	var path string

	switch {
	case file == monitorLog:
		path = d.instances.LogPath(name)

		_, err = os.Stat(path)
		if os.IsNotExist(err) {
			return response.RawResponse(monitorLog, 0, time.Time{}, nil, strings.NewReader(""))
		}
	case instance.IsExecOutput(file):
		path = d.instances.ExecOutputPath(name, file)

		_, err = os.Stat(path)
		if os.IsNotExist(err) {
			return logNotFound(file)
		}
	default:
		return logNotFound(file)
	}

	return response.FileResponse(path, file, nil)
}

// DELETE /1.0/instances/{name}/logs/{file}: record-output files only, as
// LXD (which refuses its own lxc.log).
func instanceLogDelete(d *Daemon, r *http.Request) response.Response {
	name, file := pathVar(r, "name"), pathVar(r, "file")

	err := d.instances.Exists(r.Context(), name)
	if err != nil {
		return response.SmartError(err)
	}

	if file == monitorLog {
		return response.BadRequest(errors.New("only exec output files can be deleted, not " + monitorLog))
	}

	if !instance.IsExecOutput(file) {
		return logNotFound(file)
	}

	err = os.Remove(d.instances.ExecOutputPath(name, file))
	if os.IsNotExist(err) {
		return logNotFound(file)
	}

	if err != nil {
		return response.InternalError(err)
	}

	return response.SyncResponse(true, nil)
}

func logNotFound(file string) response.Response {
	return response.NotFound(fmt.Errorf("log file %q not found", file))
}
