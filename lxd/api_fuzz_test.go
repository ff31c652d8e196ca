package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/lxd/network"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/validate"
)

// Request bodies FuzzAPIBody decodes, as the handlers named do.
const (
	bodyInstancesPost = iota // POST /1.0/instances
	bodyInstancePut          // PUT /1.0/instances/{name}
	bodyInstancePatch        // PATCH /1.0/instances/{name}
	bodyProfilesPost         // POST /1.0/profiles (PUT shares the checks)
	bodyNetworksPost         // POST /1.0/networks
	bodyAliasesPost          // POST /1.0/images/aliases
	bodyKinds
)

// FuzzAPIBody feeds request bodies through decodeJSON and the checks the handlers run
// before anything is written (names, config keys, devices), and asserts: no panic; a
// refusal is a 4xx naming the problem, never a 500; checking is deterministic and leaves
// its input alone; an accepted body survives a JSON round trip and is accepted again.
func FuzzAPIBody(f *testing.F) {
	for kind, bodies := range map[uint8][]string{
		bodyInstancesPost: {`{"name":"c1","source":{"type":"image","alias":"debian/12"},"config":{"limits.memory":"512MiB","limits.cpu":"0-1,3"},"devices":{"data":{"type":"disk","source":"/srv","path":"/srv"}}}`},
		bodyInstancePut:   {`{"config":{"limits.cpu.allowance":"25ms/100ms","raw.idmap":"both 1000 1000"},"devices":{"p":{"type":"proxy","listen":"tcp:127.0.0.1:80","connect":"tcp:127.0.0.1:80"}},"profiles":["default"]}`},
		bodyInstancePatch: {`{"devices":{"eth0":{"type":"nic","network":"berthbr0"}},"ephemeral":true}`, `{"name":"x"}`},
		bodyProfilesPost:  {`{"name":"web","config":{"environment.HTTP":"1"},"devices":{"root":{"type":"disk","path":"/","pool":"default"}}}`},
		bodyNetworksPost:  {`{"name":"br1","config":{"ipv4.address":"10.1.2.1/24","ipv6.address":"none"}}`},
		bodyAliasesPost:   {`{"name":"debian/12","target":"abcdef"}`, `{"name":"../x","target":""}`},
	} {
		for _, b := range bodies {
			f.Add(kind, []byte(b))
		}
	}

	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		if len(body) > 64<<10 {
			return // decodeJSON's 4 MiB cap is tested elsewhere; keep runs quick
		}

		kind %= bodyKinds

		v, err := decodeBody(kind, body)
		if err != nil {
			code := api.StatusCodeOf(err)
			if code != http.StatusBadRequest && code != http.StatusRequestEntityTooLarge {
				t.Fatalf("decodeJSON(%q): status %d (%v), want 400 or 413", body, code, err)
			}

			return
		}

		before := clone(t, v)
		err = checkBody(kind, v)
		if !reflect.DeepEqual(v, before) {
			t.Fatalf("checking changed the request: %+v, was %+v", v, before)
		}

		if again := checkBody(kind, clone(t, v)); (again == nil) != (err == nil) {
			t.Fatalf("checking is not deterministic: %v, then %v", err, again)
		}

		if err != nil && strings.HasPrefix(err.Error(), "BUG: ") {
			t.Fatal(err)
		}

		if err != nil {
			rec := httptest.NewRecorder()
			_ = response.SmartError(err).Render(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			if rec.Code < 400 || rec.Code >= 500 {
				t.Fatalf("refused %q with status %d: %v", body, rec.Code, err)
			}

			return
		}

		out, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}

		v2, err := decodeBody(kind, out)
		if err == nil {
			err = checkBody(kind, v2)
		}

		if err != nil {
			t.Fatalf("accepted %q, but its re-encoding %s is refused: %v", body, out, err)
		}
	})
}

// decodeBody decodes body as the handler of kind does, through decodeJSON.
func decodeBody(kind uint8, body []byte) (any, error) {
	r := httptest.NewRequest(http.MethodPost, "/1.0/x", bytes.NewReader(body))

	var v any
	switch kind {
	case bodyInstancesPost:
		v = &api.InstancesPost{}
	case bodyInstancePut:
		v = &api.InstancePut{}
	case bodyInstancePatch:
		patch := map[string]json.RawMessage{}
		err := decodeJSON(r, &patch)
		if err != nil {
			return nil, err
		}

		cur := api.InstancePut{Config: map[string]string{"volatile.uuid": "u"}, Devices: map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "default"}}, Profiles: []string{"default"}}
		put, err := applyInstancePatch(cur, patch)
		if err != nil {
			return nil, err
		}

		return &put, nil
	case bodyProfilesPost:
		v = &api.ProfilesPost{}
	case bodyNetworksPost:
		v = &api.NetworksPost{}
	case bodyAliasesPost:
		v = &api.ImageAliasesPost{}
	}

	err := decodeJSON(r, v)
	if err != nil {
		return nil, err
	}

	return v, nil
}

// checkBody runs the checks of the handler of kind that need no database.
func checkBody(kind uint8, v any) error {
	switch kind {
	case bodyInstancesPost:
		req := v.(*api.InstancesPost)
		if req.Name != "" {
			err := validate.InstanceName(req.Name)
			if err != nil {
				return api.StatusErrorf(http.StatusBadRequest, "%v", err)
			}
		}

		return checkInstance(req.Config, req.Devices)
	case bodyInstancePut, bodyInstancePatch:
		req := v.(*api.InstancePut)
		local := map[string]string{}
		for k, val := range req.Config {
			if !strings.HasPrefix(k, "volatile.") {
				local[k] = val
			}
		}

		return checkInstance(local, req.Devices)
	case bodyProfilesPost:
		req := v.(*api.ProfilesPost)
		err := validate.EntityName("profile", req.Name)
		if err != nil {
			return api.StatusErrorf(http.StatusBadRequest, "%v", err)
		}

		return checkInstance(req.Config, req.Devices)
	case bodyNetworksPost:
		req := v.(*api.NetworksPost)
		err := network.ValidateName(req.Name)
		if err == nil {
			err = network.ValidateConfig(req.Config)
		}

		return err
	case bodyAliasesPost:
		err := validate.AliasName(v.(*api.ImageAliasesPost).Name)
		if err != nil {
			return api.StatusErrorf(http.StatusBadRequest, "%v", err)
		}
	}

	return nil
}

// checkInstance is what instance.PrepareCreate and PrepareUpdate check of the local
// config and devices, plus what a start will do with the sizes: parse them.
func checkInstance(config map[string]string, devices map[string]map[string]string) error {
	err := instance.ValidateConfig(config)
	if err == nil {
		err = instance.ValidateDevices(devices)
	}

	if err != nil {
		return err
	}

	// What is accepted must be usable: a start turns limits.memory into bytes.
	mem := config["limits.memory"]
	if mem != "" && !strings.HasSuffix(mem, "%") {
		n, err := instance.ParseBytes(mem)
		if err != nil || n <= 0 {
			return fmt.Errorf("BUG: limits.memory %q was accepted but parses to %d, %v", mem, n, err)
		}
	}

	return nil
}

func clone(t *testing.T, v any) any {
	t.Helper()

	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}

	out := reflect.New(reflect.TypeOf(v).Elem()).Interface()
	err = json.Unmarshal(data, out)
	if err != nil {
		t.Fatal(err)
	}

	return out
}
