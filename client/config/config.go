// Package config is the CLI's client configuration, shaped like lxc's so that
// habits (and files) carry over: a directory ($BERTH_CONF, else
// ~/.config/berth) holding config.yml (the default remote and the remotes),
// client.crt and client.key (the client's TLS identity, generated on first
// use) and servercerts/NAME.crt (each HTTPS remote's certificate, pinned
// when the remote was added).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/berth-dev/berth/shared/atomicfile"
	"gopkg.in/yaml.v3"
)

// Local is the built-in remote: berthd's unix socket. It always exists and
// cannot be removed, renamed or moved.
const Local = "local"

// LocalAddr is the local remote's address: the default socket
// (client.DefaultSocketPath). "unix:///path" names another socket.
const LocalAddr = "unix://"

// ProtocolLXD is the protocol of every remote Berth can use: LXD's REST API.
const ProtocolLXD = "lxd"

// maxConfigSize bounds config.yml: it is small, and read on every command.
const maxConfigSize = 1 << 20

// maxNameLen bounds a remote's name: it is also a file name in servercerts/.
const maxNameLen = 128

// Remote is a server the CLI knows, as lxc's config.yml describes it.
type Remote struct {
	Addr     string `yaml:"addr"`
	Protocol string `yaml:"protocol,omitempty"`
	// AuthType and Project are kept from lxc's files; Berth speaks tls and
	// knows only the default project.
	AuthType string `yaml:"auth_type,omitempty"`
	Project  string `yaml:"project,omitempty"`
	Public   bool   `yaml:"public"`
}

// Config is config.yml and the directory it lives in.
type Config struct {
	DefaultRemote string            `yaml:"default-remote"`
	Remotes       map[string]Remote `yaml:"remotes"`
	Aliases       map[string]string `yaml:"aliases,omitempty"`

	// Dir is the configuration directory.
	Dir string `yaml:"-"`
	// Socket, when set, is the local remote's socket (the --socket flag).
	Socket string `yaml:"-"`
	// OnGenerate, when set, is called before a client certificate is
	// generated (the CLI says so: it is a visible first-use step).
	OnGenerate func() `yaml:"-"`
}

// DefaultDir is $BERTH_CONF, else berth/ in the user's configuration
// directory ($XDG_CONFIG_HOME, else ~/.config).
func DefaultDir() (string, error) {
	dir := os.Getenv("BERTH_CONF")
	if dir != "" {
		return dir, nil
	}

	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the configuration directory (set BERTH_CONF): %w", err)
	}

	return filepath.Join(base, "berth"), nil
}

// Load reads dir/config.yml. A missing file is the default configuration:
// the local remote, which is the default one.
func Load(dir string) (*Config, error) {
	c := &Config{Dir: dir}

	path := c.path()
	f, err := os.Open(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading the client configuration: %w", err)
	}

	if err == nil {
		defer func() { _ = f.Close() }()

		data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}

		if len(data) > maxConfigSize {
			return nil, fmt.Errorf("reading %s: larger than %d bytes", path, maxConfigSize)
		}

		err = yaml.Unmarshal(data, c)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", path, err)
		}
	}

	if c.Remotes == nil {
		c.Remotes = map[string]Remote{}
	}

	for name := range c.Remotes {
		err := ValidateName(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}

	local, ok := c.Remotes[Local]
	if !ok || !strings.HasPrefix(local.Addr, "unix:") {
		c.Remotes[Local] = Remote{Addr: LocalAddr}
	}

	if c.DefaultRemote == "" {
		c.DefaultRemote = Local
	}

	return c, nil
}

// Save writes config.yml (mode 0600, replaced atomically), creating the
// directory (0700) if needed.
func (c *Config) Save() error {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2) // lxc's layout
	err := enc.Encode(c)
	if err == nil {
		err = enc.Close()
	}

	if err != nil {
		return fmt.Errorf("encoding the client configuration: %w", err)
	}

	data := buf.Bytes()

	err = os.MkdirAll(c.Dir, 0o700)
	if err != nil {
		return fmt.Errorf("creating the configuration directory: %w", err)
	}

	return atomicfile.WriteDurable(c.path(), data, 0o600)
}

func (c *Config) path() string { return filepath.Join(c.Dir, "config.yml") }

// ServerCertPath is where the pinned certificate of remote name is kept.
func (c *Config) ServerCertPath(name string) string {
	return filepath.Join(c.Dir, "servercerts", name+".crt")
}

// ParseRemote splits a REMOTE:NAME argument. Without a colon, or when the
// part before the colon contains "/" (a snapshot or a path with a colon in
// it, as lxc allows), the remote is the default one. An unknown remote is an
// error.
func (c *Config) ParseRemote(arg string) (remote, name string, err error) {
	r, rest, ok := strings.Cut(arg, ":")
	if !ok || strings.Contains(r, "/") {
		return c.DefaultRemote, arg, nil
	}

	_, known := c.Remotes[r]
	if !known {
		return "", "", fmt.Errorf("the remote %q doesn't exist", r)
	}

	return r, rest, nil
}

// ValidateName checks a remote's name: it is typed before a colon and is a
// file name in servercerts/.
func ValidateName(name string) error {
	switch {
	case name == "":
		return errors.New("a remote name can't be empty")
	case len(name) > maxNameLen:
		// Not quoted: an over-long "name" is most often a join token given in the
		// wrong place, and a token is a secret.
		return fmt.Errorf("a remote name is at most %d bytes (was a token given as the name? berth remote add NAME TOKEN)", maxNameLen)
	case name == "." || name == "..", strings.HasPrefix(name, "-"):
		return fmt.Errorf("invalid remote name %q", name)
	case strings.ContainsAny(name, ":/\\"):
		return fmt.Errorf("remote name %q may not contain ':', '/' or '\\'", name)
	}

	for _, r := range name {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("remote name %q may not contain spaces or control characters", name)
		}
	}

	return nil
}
