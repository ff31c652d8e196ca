package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/projects"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

// maxBulkState bounds the instances a bulk state change works on at once.
const maxBulkState = 4

// bulkStatePut is LXD's InstancesPut: the state every instance should get.
type bulkStatePut struct {
	State *api.InstanceStatePut `json:"state"`
}

// PUT /1.0/instances: changes the state of every instance (lxc start/stop/restart --all
// send it), as one operation, as LXD does: instances already in the wanted state are
// left alone, the others change a few at a time, and the operation fails naming those
// that did not. Only the instances of the request's project (every project's with
// all-projects=true), and in a cluster only this member's: it cannot start another
// member's containers (forwarding fans the request out).
func instancesPut(d *Daemon, r *http.Request) response.Response {
	req := bulkStatePut{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	if req.State == nil {
		return response.BadRequest(fmt.Errorf("state is missing"))
	}

	list, err := d.instances.ListLocal(r.Context(), false) // this member's; another member changes its own
	if err != nil {
		return response.SmartError(err)
	}

	type target struct {
		name string
		fn   func(ctx context.Context, op *operations.Operation) error
	}

	var targets []target
	urls := []string{}
	for _, inst := range list {
		if !inScope(r, inst.Project) || !needsAction(inst.Status, req.State.Action) {
			continue
		}

		key := project.Key(inst.Project, inst.Name)
		_, fn, err := stateAction(d, key, *req.State)
		if err != nil {
			return response.SmartError(err)
		}

		targets = append(targets, target{key, fn})
		urls = append(urls, projects.InstanceURL(key))
	}

	if len(list) == 0 {
		// Still validate the action for an empty host.
		_, _, err := stateAction(d, "", *req.State)
		if err != nil {
			return response.SmartError(err)
		}
	}

	resources := map[string][]string{"instances": urls, "containers": slices.Clone(urls)}
	return d.task("Updating instance states", resources, func(ctx context.Context, op *operations.Operation) error {
		var mu sync.Mutex
		var failed []string
		var wg sync.WaitGroup
		sem := make(chan struct{}, maxBulkState)
		for _, t := range targets {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()

				err := t.fn(ctx, op)
				if err != nil {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("%s: %v", t.name, err))
					mu.Unlock()
				}
			}()
		}

		wg.Wait()
		if len(failed) > 0 {
			slices.Sort(failed)
			return fmt.Errorf("some instances failed to %s: %s", req.State.Action, strings.Join(failed, "; "))
		}

		return nil
	})
}

// needsAction reports whether an instance in status would change under action, as
// LXD decides it (an unknown action is refused later, for every instance).
func needsAction(status, action string) bool {
	switch action {
	case "start":
		return status == "Stopped"
	case "stop", "restart", "freeze":
		return status == "Running" || (action == "stop" && status == "Frozen")
	case "unfreeze":
		return status == "Frozen"
	}

	return true
}
