package main

import (
	"net/http"
	"strings"

	"github.com/berth-dev/berth/shared/api"
)

// A list of instances carries each one's config and devices twice (local and expanded):
// two thirds of a running container's ~3.3 kB of JSON, and most of what berthd spends
// encoding a list (the maps) and a client decoding it. A table of names, states and
// addresses reads none of it. GET /1.0/instances?omit=config,devices (Berth's API
// extension instances_list_omit) leaves them out: null in each object, as a nil map
// encodes. `berth list` asks for it when its columns and filters read neither. LXD
// ignores the parameter, so a client that sends it to LXD gets the whole objects.

// omitted is what a list leaves out of its instances.
type omitted struct {
	config  bool // config and expanded_config
	devices bool // devices and expanded_devices
}

// parseOmit reads ?omit=: a comma-separated list of config and devices.
func parseOmit(r *http.Request) (omitted, error) {
	o := omitted{}
	v := r.FormValue("omit")
	if v == "" {
		return o, nil
	}

	for _, part := range strings.Split(v, ",") {
		switch part {
		case "config":
			o.config = true
		case "devices":
			o.devices = true
		default:
			return o, api.StatusErrorf(http.StatusBadRequest, "omit: unknown part %q (config or devices)", part)
		}
	}

	return o, nil
}

// apply leaves the omitted parts out of a list's objects, in place.
func (o omitted) apply(p *listPart) {
	for i := range p.full {
		o.leaveOut(&p.full[i].Instance)
	}

	for i := range p.objs {
		o.leaveOut(&p.objs[i])
	}
}

func (o omitted) leaveOut(inst *api.Instance) {
	if o.config {
		inst.Config, inst.ExpandedConfig = nil, nil
	}

	if o.devices {
		inst.Devices, inst.ExpandedDevices = nil, nil
	}
}
