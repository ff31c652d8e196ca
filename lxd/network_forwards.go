package main

import (
	"net"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/lxd/networks"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

func forwardURL(name, listen string) string {
	return "/1.0/networks/" + url.PathEscape(name) + "/forwards/" + url.PathEscape(listen)
}

// GET /1.0/networks/{name}/forwards
func networkForwardsGet(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")
	list, err := d.networks.Forwards(r.Context(), name)
	if err != nil {
		return response.SmartError(err)
	}

	if recursion(r) >= 1 {
		return response.SyncResponse(true, list)
	}

	urls := make([]string, 0, len(list))
	for _, f := range list {
		urls = append(urls, forwardURL(name, f.ListenAddress))
	}

	return response.SyncResponse(true, urls)
}

// POST /1.0/networks/{name}/forwards
func networkForwardsPost(d *Daemon, r *http.Request) response.Response {
	req := api.NetworkForwardsPost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	name := pathVar(r, "name")
	err = d.networks.CreateForward(r.Context(), name, req)
	if err != nil {
		return response.SmartError(err)
	}

	listen := req.ListenAddress
	if ip := net.ParseIP(listen); ip != nil {
		listen = ip.String() // as stored
	}

	return response.SyncResponseLocation(true, nil, forwardURL(name, listen))
}

// GET /1.0/networks/{name}/forwards/{listen}
func networkForwardGet(d *Daemon, r *http.Request) response.Response {
	f, err := d.networks.Forward(r.Context(), pathVar(r, "name"), pathVar(r, "listen"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseETag(true, f, networks.ForwardETag(f))
}

// PUT /1.0/networks/{name}/forwards/{listen}
func networkForwardPut(d *Daemon, r *http.Request) response.Response {
	return networkForwardUpdate(d, r, false)
}

// PATCH /1.0/networks/{name}/forwards/{listen}
func networkForwardPatch(d *Daemon, r *http.Request) response.Response {
	return networkForwardUpdate(d, r, true)
}

func networkForwardUpdate(d *Daemon, r *http.Request, patch bool) response.Response {
	req := api.NetworkForwardPut{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.networks.UpdateForward(r.Context(), pathVar(r, "name"), pathVar(r, "listen"), r.Header.Get("If-Match"), req, patch)
	if err != nil {
		return response.SmartError(err)
	}

	return response.EmptySyncResponse
}

// DELETE /1.0/networks/{name}/forwards/{listen}
func networkForwardDelete(d *Daemon, r *http.Request) response.Response {
	err := d.networks.DeleteForward(r.Context(), pathVar(r, "name"), pathVar(r, "listen"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.EmptySyncResponse
}
