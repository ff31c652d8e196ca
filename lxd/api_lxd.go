package main

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/berth-dev/berth/lxd/response"
)

// LXD 5.0's API, path by path (below /1.0, as in endpoints), from LXD's own description
// of it (test/parity checks this table against that file operation by operation). An
// operation listed here that endpoints does not serve answers 501 with the reason, not
// 404/405: a client learns that Berth lacks it, and which work brings it. A route added
// to endpoints takes precedence by itself; this table only changes when LXD's does.
var lxdAPI = []lxdPath{
	{"", "GET PUT PATCH", ""},
	{"certificates", "GET POST", ""},
	{"certificates/{fingerprint}", "GET PUT PATCH DELETE", ""},
	{"cluster", "GET PUT", noteCluster},
	{"cluster/certificate", "PUT", noteCluster},
	{"cluster/groups", "GET POST", noteCluster},
	{"cluster/groups/{name}", "GET PUT PATCH POST DELETE", noteCluster},
	{"cluster/members", "GET POST", noteCluster},
	{"cluster/members/{name}", "GET PUT PATCH POST DELETE", noteCluster},
	{"cluster/members/{name}/state", "POST", noteCluster},
	{"events", "GET", ""},
	{"images", "GET POST", ""},
	{"images/{fingerprint}", "GET PUT PATCH DELETE", noteImages},
	{"images/{fingerprint}/export", "GET POST", noteImageServers},
	{"images/{fingerprint}/refresh", "POST", noteImageServers},
	{"images/{fingerprint}/secret", "POST", noteImageServers},
	{"images/aliases", "GET POST", ""},
	{"images/aliases/{name}", "GET PUT PATCH POST DELETE", ""},
	{"instances", "GET POST PUT", noteInstances},
	{"instances/{name}", "GET PUT PATCH POST DELETE", noteInstances},
	{"instances/{name}/backups", "GET POST", ""},
	{"instances/{name}/backups/{backup}", "GET POST DELETE", ""},
	{"instances/{name}/backups/{backup}/export", "GET", ""},
	{"instances/{name}/console", "GET POST DELETE", ""},
	{"instances/{name}/exec", "POST", ""},
	{"instances/{name}/files", "GET POST DELETE", ""},
	{"instances/{name}/logs", "GET", ""},
	{"instances/{name}/logs/{filename}", "GET DELETE", ""},
	{"instances/{name}/metadata", "GET PUT PATCH", noteInstances},
	// PUT is not in LXD's description, but LXD serves it and `lxc config template edit` sends it.
	{"instances/{name}/metadata/templates", "GET POST PUT DELETE", noteInstances},
	{"instances/{name}/sftp", "GET", "SFTP over the API is not planned; use lxc file"},
	{"instances/{name}/snapshots", "GET POST", ""},
	{"instances/{name}/snapshots/{snapshot}", "GET PUT PATCH POST DELETE", ""},
	{"instances/{name}/state", "GET PUT", ""},
	{"metrics", "GET", ""},
	{"network-acls", "GET POST", noteNetworks},
	{"network-acls/{name}", "GET PUT PATCH POST DELETE", noteNetworks},
	{"network-acls/{name}/log", "GET", noteACLLog},
	{"network-zones", "GET POST", noteZones},
	{"network-zones/{name}", "GET PUT PATCH DELETE", noteZones},
	{"network-zones/{zone}/records", "GET POST", noteZones},
	{"network-zones/{zone}/records/{name}", "GET PUT PATCH DELETE", noteZones},
	{"networks", "GET POST", ""},
	{"networks/{name}", "GET PUT PATCH POST DELETE", noteNetworks},
	{"networks/{name}/leases", "GET", noteNetworks},
	{"networks/{name}/state", "GET", ""},
	{"networks/{networkName}/forwards", "GET POST", noteNetworks},
	{"networks/{networkName}/forwards/{listenAddress}", "GET PUT PATCH DELETE", noteNetworks},
	{"networks/{networkName}/peers", "GET POST", notePeers},
	{"networks/{networkName}/peers/{peerName}", "GET PUT PATCH DELETE", notePeers},
	{"operations", "GET", ""},
	{"operations/{id}", "GET DELETE", ""},
	{"operations/{id}/wait", "GET", ""},
	{"operations/{id}/websocket", "GET", ""},
	{"profiles", "GET POST", ""},
	{"profiles/{name}", "GET PUT PATCH POST DELETE", ""},
	{"projects", "GET POST", ""},
	{"projects/{name}", "GET PUT PATCH POST DELETE", ""},
	{"projects/{name}/state", "GET", ""},
	{"resources", "GET", noteHost},
	{"storage-pools", "GET POST", noteStorage},
	{"storage-pools/{name}", "GET PUT PATCH DELETE", noteStorage},
	{"storage-pools/{name}/resources", "GET", noteStorage},
	{"storage-pools/{name}/volumes", "GET POST", noteStorage},
	{"storage-pools/{name}/volumes/{type}", "GET POST", noteStorage},
	{"storage-pools/{name}/volumes/{type}/{volume}", "GET PUT PATCH POST DELETE", noteStorage},
	{"storage-pools/{name}/volumes/{type}/{volume}/backups", "GET POST", noteStorage},
	{"storage-pools/{name}/volumes/{type}/{volume}/backups/{backup}", "GET POST DELETE", noteStorage},
	{"storage-pools/{name}/volumes/{type}/{volume}/backups/{backup}/export", "GET", noteStorage},
	{"storage-pools/{name}/volumes/{type}/{volume}/snapshots", "GET POST", noteStorage},
	{"storage-pools/{name}/volumes/{type}/{volume}/snapshots/{snapshot}", "GET PUT PATCH POST DELETE", noteStorage},
	{"storage-pools/{name}/volumes/{type}/{volume}/state", "GET", noteStorage},
	{"warnings", "GET", noteHost},
	{"warnings/{uuid}", "GET PUT PATCH DELETE", noteHost},
}

// Which work brings what is missing (the issues of the project's tracker).
const (
	noteCluster      = "clustering: issue 16"
	noteStorage      = "storage pools and volumes: issue 14"
	noteImages       = "image API parity: issue 13"
	noteImageServers = "image API parity: issue 13; image servers: issue 15"
	noteInstances    = "instance API parity: issue 13"
	noteNetworks     = "network API parity: issue 13"
	noteHost         = "warnings and resources: issue 13"
	noteZones        = "network zones (DNS) are not planned"
	// Checked on kernel 6.18: the bridge family has loggers (nf_log_bridge, nfnetlink_log)
	// and accepts a log rule in a bridge chain, so the kernel is not what is missing.
	noteACLLog = "LXD 5.0 reads ACL logs from OVN's controller log and Berth has no OVN; " +
		"the kernel can log in Berth's bridge-family ACL chains, but Berth does not yet add log rules for state=logged nor collect what they log"
	notePeers = "network peers need OVN networks, which Berth does not have"
)

// lxdPath is one path of LXD's API and its methods.
type lxdPath struct {
	Path    string // below /1.0, "" for /1.0 itself
	Methods string // space separated
	Note    string // which work brings what Berth does not serve
}

// pathVarRE matches a path variable, with or without a mux pattern ({name:.*}).
var pathVarRE = regexp.MustCompile(`\{[^}]*\}`)

// routeKey makes two spellings of one route equal: variables lose names and patterns.
func routeKey(path string) string { return pathVarRE.ReplaceAllString(path, "{}") }

// lxdPathOf returns the entry of LXD's table for a route of ours.
func lxdPathOf(path string) (lxdPath, bool) {
	key := routeKey(path)
	for _, p := range lxdAPI {
		if routeKey(p.Path) == key {
			return p, true
		}
	}

	return lxdPath{}, false
}

// withUnserved returns eps plus an endpoint without handlers for every path of LXD's API
// that eps lacks: dispatch answers those 501.
func withUnserved(eps []APIEndpoint) []APIEndpoint {
	have := map[string]bool{}
	for _, ep := range eps {
		have[routeKey(ep.Path)] = true
	}

	out := slices.Clone(eps)
	for _, p := range lxdAPI {
		if !have[routeKey(p.Path)] {
			out = append(out, APIEndpoint{Path: p.Path})
		}
	}

	return out
}

// unserved answers a method an endpoint has no handler for: 501 when LXD's API has it
// (Berth does not implement it yet), else 405.
func unserved(ep APIEndpoint, r *http.Request) response.Response {
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}

	p, ok := lxdPathOf(ep.Path)
	if !ok || !slices.Contains(strings.Fields(p.Methods), method) {
		return response.ErrorResponse(http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path))
	}

	path := "/1.0"
	if ep.Path != "" {
		path += "/" + ep.Path
	}

	if rest, ok := strings.CutPrefix(ep.Path, collectionInstances); ok && instanceCollection(r) == collectionContainers {
		path = "/1.0/" + collectionContainers + rest
	}

	msg := fmt.Sprintf("%s %s is not implemented in Berth", method, path)

	if p.Note != "" {
		msg += " (" + p.Note + ")"
	}

	return response.ErrorResponse(http.StatusNotImplemented, msg)
}
