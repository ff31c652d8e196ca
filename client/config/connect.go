package config

import (
	"fmt"
	"strings"

	"github.com/berth-dev/berth/client"
)

// Connect returns a client for the named remote: the unix socket for
// unix:// addresses, else HTTPS with the client certificate (generated on
// first use) and the remote's pinned certificate, or the system roots when
// none was saved.
func (c *Config) Connect(name string) (*client.Client, error) {
	r, ok := c.Remotes[name]
	if !ok {
		return nil, fmt.Errorf("the remote %q doesn't exist", name)
	}

	switch {
	case r.Public || (r.Protocol != "" && r.Protocol != ProtocolLXD):
		return nil, fmt.Errorf("the remote %q is an image server (protocol %q): berth can't use it yet", name, r.Protocol)
	case r.Project != "" && r.Project != "default":
		return nil, fmt.Errorf("the remote %q uses project %q: berth knows only the default project", name, r.Project)
	}

	if path, ok := strings.CutPrefix(r.Addr, "unix:"); ok {
		path = strings.TrimPrefix(path, "//")
		if path == "" && name == Local {
			path = c.Socket
		}

		return client.Connect(path)
	}

	cert, key, err := c.ClientCertificate()
	if err != nil {
		return nil, err
	}

	pinned, err := c.readServerCert(name)
	if err != nil {
		return nil, err
	}

	return client.ConnectHTTPS(r.Addr, client.HTTPSArgs{ClientCert: cert, ClientKey: key, ServerCert: pinned})
}
