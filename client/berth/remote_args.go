package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/client/config"
)

// The REMOTE:NAME arguments of every command go through here: target parses
// one against the client configuration and connects to its remote.

// config loads the client configuration once. Without a configuration
// directory (no $HOME, no $BERTH_CONF) the local remote still works.
func (a *app) config() (*config.Config, error) {
	if a.conf != nil {
		return a.conf, nil
	}

	dir := a.confDir
	if dir == "" {
		d, err := config.DefaultDir()
		if err == nil {
			dir = d
		}
	}

	conf := &config.Config{DefaultRemote: config.Local, Remotes: map[string]config.Remote{config.Local: {Addr: config.LocalAddr}}}
	if dir != "" {
		var err error
		conf, err = config.Load(dir)
		if err != nil {
			return nil, err
		}
	}

	conf.Socket = a.socket
	conf.OnGenerate = func() {
		_, _ = fmt.Fprintln(a.errOut, "Generating a client certificate. This may take a minute...")
	}

	a.conf = conf

	return conf, nil
}

// saveConfig writes the client configuration back.
func (a *app) saveConfig() error {
	if a.conf.Dir == "" {
		return fmt.Errorf("no client configuration directory: set BERTH_CONF or HOME")
	}

	return a.conf.Save()
}

// remoteClient returns the client of the named remote, connecting on first
// use.
func (a *app) remoteClient(name string) (*client.Client, error) {
	if c, ok := a.clients[name]; ok {
		return c, nil
	}

	conf, err := a.config()
	if err != nil {
		return nil, err
	}

	c, err := conf.Connect(name)
	if err != nil {
		return nil, err
	}

	if a.clients == nil {
		a.clients = map[string]*client.Client{}
	}

	a.clients[name] = c

	return c, nil
}

// parseRemote splits a [REMOTE:]NAME argument; no remote means the default.
func (a *app) parseRemote(arg string) (remote, name string, err error) {
	conf, err := a.config()
	if err != nil {
		return "", "", err
	}

	return conf.ParseRemote(arg)
}

// target resolves a [REMOTE:]NAME argument to its remote's client and the
// name on that remote (empty for "REMOTE:").
func (a *app) target(arg string) (*client.Client, string, error) {
	remote, name, err := a.parseRemote(arg)
	if err != nil {
		return nil, "", err
	}

	c, err := a.remoteClient(remote)
	if err != nil {
		return nil, "", err
	}

	return c, name, nil
}

// instanceTarget is target for an argument that must name something: an
// instance, a profile, a network, an alias.
func (a *app) instanceTarget(arg string) (*client.Client, string, error) {
	c, name, err := a.target(arg)
	if err != nil {
		return nil, "", err
	}

	if name == "" {
		return nil, "", fmt.Errorf("%q names a remote but nothing on it", arg)
	}

	return c, name, nil
}

// sameRemote resolves two arguments that must be on one remote (copy, move,
// rename): berth does not move instances between servers.
func (a *app) sameRemote(src, dst string) (*client.Client, string, string, error) {
	rs, ns, err := a.parseRemote(src)
	if err != nil {
		return nil, "", "", err
	}

	rd, nd, err := a.parseRemote(dst)
	if err != nil {
		return nil, "", "", err
	}

	if rs != rd {
		return nil, "", "", fmt.Errorf("copying or moving between remotes (%s to %s) is not supported", rs, rd)
	}

	c, err := a.remoteClient(rs)
	if err != nil {
		return nil, "", "", err
	}

	return c, ns, nd, nil
}

// remoteOnly reads the optional REMOTE: argument of a command that lists or
// adds to a whole remote (list, image import): the client of that remote, or
// of the default one without an argument.
func (a *app) remoteOnly(cmd *cobra.Command, args []string) (*client.Client, error) {
	if len(args) == 0 {
		return a.client()
	}

	c, rest, err := a.target(args[0])
	if err != nil {
		return nil, err
	}

	if rest != "" {
		return nil, &usageError{cmd: cmd, err: fmt.Errorf("unexpected argument %q: give only REMOTE:", args[0])}
	}

	return c, nil
}
