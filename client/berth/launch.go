package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
)

type launchFlags struct {
	profiles   []string
	config     []string
	ephemeral  bool
	noProfiles bool
	storage    string
	network    string
}

// newLaunchCmd makes `launch` (start=true) or `init` (create only).
func newLaunchCmd(a *app, start bool) *cobra.Command {
	f := &launchFlags{}
	cmd := &cobra.Command{
		Use:   "init [REMOTE:]IMAGE [[REMOTE:]NAME]",
		Short: "Create instances from images",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) > 1 {
				name = args[1]
			}

			return a.launch(cmd.Context(), args[0], name, f, start)
		},
	}

	if start {
		cmd.Use = "launch [REMOTE:]IMAGE [[REMOTE:]NAME]"
		cmd.Short = "Create and start instances from images"
	}

	fl := cmd.Flags()
	fl.StringArrayVarP(&f.profiles, "profile", "p", nil, "Profile to apply to the new instance (repeatable)")
	fl.StringArrayVarP(&f.config, "config", "c", nil, "Config key/value to apply to the new instance (repeatable)")
	fl.BoolVarP(&f.ephemeral, "ephemeral", "e", false, "Ephemeral instance")
	fl.BoolVar(&f.noProfiles, "no-profiles", false, "Create the instance with no profiles applied")
	fl.StringVarP(&f.storage, "storage", "s", "", "Storage pool name")
	fl.StringVarP(&f.network, "network", "n", "", "Network name")
	if !start {
		withPreseed(a, cmd) // init_preseed.go
	}

	return cmd
}

// parseKeyValues turns k=v arguments into a map (never nil).
func parseKeyValues(pairs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("bad key=value pair: %q", p)
		}

		out[k] = v
	}

	return out, nil
}

// buildInstancesPost assembles the create request as `lxc init` does.
func buildInstancesPost(img *api.Image, name string, f *launchFlags) (api.InstancesPost, error) {
	if f.noProfiles && len(f.profiles) > 0 {
		return api.InstancesPost{}, fmt.Errorf("--no-profiles cannot be combined with --profile")
	}

	cfg, err := parseKeyValues(f.config)
	if err != nil {
		return api.InstancesPost{}, err
	}

	req := api.InstancesPost{
		Name: name,
		InstancePut: api.InstancePut{
			Config:    cfg,
			Devices:   map[string]map[string]string{},
			Ephemeral: f.ephemeral,
		},
		Source: api.InstanceSource{Type: "image", Fingerprint: img.Fingerprint},
		Type:   img.Type,
	}

	// nil profiles means "the default profile"; an empty list means none.
	switch {
	case f.noProfiles:
		req.Profiles = []string{}
	case len(f.profiles) > 0:
		req.Profiles = f.profiles
	}

	if f.storage != "" {
		req.Devices["root"] = map[string]string{"type": "disk", "path": "/", "pool": f.storage}
	}

	if f.network != "" {
		req.Devices["eth0"] = map[string]string{"type": "nic", "name": "eth0", "network": f.network}
	}

	return req, nil
}

func (a *app) launch(ctx context.Context, image, name string, f *launchFlags, start bool) error {
	c, image, name, err := a.launchTarget(image, name)
	if err != nil {
		return err
	}

	if start {
		done, err := a.launchInOne(ctx, c, image, name, f)
		if done {
			return err
		}
	}

	img, err := resolveImage(ctx, c, image)
	if err != nil {
		return err
	}

	req, err := buildInstancesPost(img, name, f)
	if err != nil {
		return err
	}

	err = checkLaunchTargets(ctx, c, f)
	if err != nil {
		return err
	}

	if name == "" {
		a.printf("Creating the instance\n")
	} else {
		a.printf("Creating %s\n", name)
	}

	op, err := c.CreateInstance(ctx, req)
	if err != nil {
		return err
	}

	err = a.waitWithProgress(ctx, op)
	if err != nil {
		return err
	}

	if name == "" {
		name = op.InstanceName()
		if name == "" {
			return fmt.Errorf("the server did not report the new instance's name")
		}

		a.printf("Instance name is: %s\n", name)
	}

	if !start {
		return nil
	}

	a.printf("Starting %s\n", name)

	return a.startLaunched(ctx, c, name)
}

// startLaunched starts the instance a launch has just made; a failed start deletes it.
func (a *app) startLaunched(ctx context.Context, c *client.Client, name string) error {
	err := setState(ctx, c, name, api.InstanceStatePut{Action: "start", Timeout: -1})
	if err != nil {
		return a.undoLaunch(c, name, err)
	}

	return nil
}

// launchInOne creates and starts the instance in one request where the server can
// (startsOnCreate): the server resolves image as an alias and starts the instance in the
// create's operation, which saves the client the image's alias and record lookups, the
// start request and an event stream. It reports done=false, leaving the launch to a
// request per step, when the server cannot or has no alias of that name (image may be a
// fingerprint). A failed start leaves nothing, as on the other path: the instance is
// deleted when the operation says it made it.
func (a *app) launchInOne(ctx context.Context, c *client.Client, image, name string, f *launchFlags) (bool, error) {
	if !startsOnCreate(ctx, c) {
		return false, nil
	}

	req, err := buildInstancesPost(&api.Image{}, name, f)
	if err != nil {
		return true, err
	}

	req.Source = api.InstanceSource{Type: "image", Alias: image}
	req.Start = true

	err = checkLaunchTargets(ctx, c, f)
	if err != nil {
		return true, err
	}

	op, err := c.LaunchInstance(ctx, req)
	if api.StatusErrorCheck(err, http.StatusNotFound) {
		// Something the request names is missing. The alias: image may be a fingerprint
		// (else the other path says it is not found). Anything else: that is the error.
		_, _, aerr := c.GetImageAlias(ctx, image)
		if aerr == nil {
			return true, err
		}

		return false, nil
	}

	if err != nil {
		return true, err
	}

	if name == "" {
		name = op.InstanceName()
		a.printf("Creating the instance\nInstance name is: %s\n", name)
	} else {
		a.printf("Creating %s\n", name)
	}

	a.printf("Starting %s\n", name)

	err = op.Wait(ctx)
	made := op.Metadata[api.OperationInstanceCreated] == true
	switch {
	case err != nil && made:
		return true, a.undoLaunch(c, name, err)
	case err != nil:
		return true, err
	case !made:
		// A berthd from before instance_create_start (named by the kernel, not asked)
		// made the instance and left start aside.
		return true, a.startLaunched(ctx, c, name)
	}

	return true, nil
}

// startsOnCreate says whether c's server starts an instance in its create's operation
// when asked (instance_create_start) and marks the operation when it made the instance
// (instance_created): a berthd. The local one, named by the kernel, is not asked (one
// that predates the extension ignores start, which the callers see by the missing mark).
// Incus starts on create but marks nothing: a launch there could not tell, after a failed
// start, its own instance from one another client made under that name, so it takes the
// request per step.
func startsOnCreate(ctx context.Context, c *client.Client) bool {
	if servedByBerthd(c) {
		return true
	}

	s, _, err := c.GetServer(ctx)
	return err == nil && s.Environment.Server == "berth" && slices.Contains(s.APIExtensions, "instance_create_start")
}

// checkLaunchTargets checks that the storage pool and network a launch names exist.
func checkLaunchTargets(ctx context.Context, c *client.Client, f *launchFlags) error {
	if f.storage != "" {
		_, _, err := c.GetStoragePool(ctx, f.storage)
		if err != nil {
			return fmt.Errorf("storage pool %q: %w", f.storage, err)
		}
	}

	if f.network != "" {
		_, _, err := c.GetNetwork(ctx, f.network)
		if err != nil {
			return fmt.Errorf("network %q: %w", f.network, err)
		}
	}

	return nil
}

// undoLaunch deletes the instance a launch created when its first start failed: a
// launch either gives a running instance or leaves nothing (its storage, its NIC's
// address reservation). The start's error says why; `berth init` then `berth start`
// keeps a failed instance to look at.
func (a *app) undoLaunch(c *client.Client, name string, startErr error) error {
	// The caller's context may be the cancelled one; the cleanup gets its own.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	op, err := c.DeleteInstance(ctx, name)
	if err == nil {
		err = op.Wait(ctx)
	}

	if err != nil {
		return fmt.Errorf("%w (deleting %s after the failed start also failed: %v)", startErr, name, err)
	}

	return fmt.Errorf("%w (%s was deleted again)", startErr, name)
}

// waitWithProgress waits for op, showing any `*_progress` metadata on one line.
func (a *app) waitWithProgress(ctx context.Context, op *client.Operation) error {
	p := newProgressLine(a.out)
	err := op.WaitProgress(ctx, func(o api.Operation) {
		keys := []string{}
		for k := range o.Metadata {
			if strings.HasSuffix(k, "_progress") {
				keys = append(keys, k)
			}
		}

		sort.Strings(keys)
		for _, k := range keys {
			v, _ := o.Metadata[k].(string)
			p.Update(k+v, "Retrieving image: "+v)
		}
	})
	p.Done("")

	return err
}

// launchTarget resolves launch's [REMOTE:]IMAGE and [REMOTE:]NAME to the
// remote the instance is made on, the image and the instance name there.
// An image without a remote is looked up on the instance's remote, and an
// image on another remote is refused: lxc would copy it across first, which
// berth does not do yet.
func (a *app) launchTarget(image, name string) (*client.Client, string, string, error) {
	instRemote, name, err := a.parseRemote(name)
	if err != nil {
		return nil, "", "", err
	}

	imgRemote := instRemote
	if strings.Contains(image, ":") {
		imgRemote, image, err = a.parseRemote(image)
		if err != nil {
			return nil, "", "", err
		}
	}

	if imgRemote != instRemote {
		return nil, "", "", fmt.Errorf("the image is on remote %s and the instance would be on %s: berth can't copy images between remotes yet", imgRemote, instRemote)
	}

	c, err := a.remoteClient(instRemote)
	if err != nil {
		return nil, "", "", err
	}

	return c, image, name, nil
}

// resolveImage finds the image named by an alias or a fingerprint prefix,
// like lxc: alias first, then fingerprint.
func resolveImage(ctx context.Context, c *client.Client, name string) (*api.Image, error) {
	if name == "" {
		return nil, fmt.Errorf("empty image name")
	}

	fp := name
	alias, _, err := c.GetImageAlias(ctx, name)
	if err == nil {
		fp = alias.Target
	}

	img, _, err := c.GetImage(ctx, fp)
	if err != nil {
		if api.StatusErrorCheck(err, 404) {
			return nil, fmt.Errorf("image %q not found", name)
		}

		return nil, err
	}

	return img, nil
}
