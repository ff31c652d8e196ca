package main

import (
	"net/http"
	"runtime"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/response"
)

// GET /1.0/internal/debug/goroutines: the daemon's goroutine count, so leak
// tests can check that sessions leave nothing running, and the requests it has
// made to monitors, so scale tests can check that reads of many instances make
// none. Hidden; the socket is root's only.
func debugGoroutinesGet(_ *Daemon, _ *http.Request) response.Response {
	return response.SyncResponse(true, map[string]int64{"goroutines": int64(runtime.NumGoroutine()), "monitor_calls": container.Calls()})
}
