package client

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"

	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/shared/api"
)

// Preseed is the YAML document `lxd init --preseed` reads (LXD 5.0.2's api.InitPreseed):
// server configuration, networks, storage pools, profiles and projects to create or
// update, and a cluster to enable or join. `berth init --preseed` and `berthd --preseed`
// read it with ReadPreseed and apply it with ApplyPreseed.
type Preseed struct {
	Config       map[string]any         `yaml:"config"`
	Networks     []PreseedNetwork       `yaml:"networks"`
	StoragePools []api.StoragePoolsPost `yaml:"storage_pools"`
	Profiles     []api.ProfilesPost     `yaml:"profiles"`
	Projects     []api.ProjectsPost     `yaml:"projects"`
	Cluster      *PreseedCluster        `yaml:"cluster"`

	config map[string]string // Config with its scalar values as strings (Validate)
}

// PreseedNetwork is a network of a preseed, in a project ("default" when empty).
type PreseedNetwork struct {
	api.NetworksPost `yaml:",inline"`
	Project          string `yaml:"project"`
}

// PreseedCluster is the preseed's cluster section: server_name and enabled alone enable
// clustering; cluster_token (with enabled) joins a cluster. The certificate, given inline
// or by path, is optional with a token: when given it must be the token's.
type PreseedCluster struct {
	api.ClusterPut         `yaml:",inline"`
	ClusterCertificatePath string `yaml:"cluster_certificate_path"`
}

// Limits on a preseed: it may come from any file or pipe.
const (
	MaxPreseedSize     = 1 << 20 // bytes of YAML
	maxPreseedEntries  = 256     // networks, pools, profiles, projects, member_config each
	maxPreseedKeys     = 1024    // keys of one config map, devices of one profile
	maxPreseedCertSize = 64 << 10
	maxPreseedTokenLen = 16 << 10
)

// memberLocalKeys are the server keys that are a member's own in a cluster: the only ones
// a join preseed may set (the cluster's configuration replaces the rest at the join).
var memberLocalKeys = map[string]bool{
	"core.https_address":    true,
	"cluster.https_address": true,
	"core.metrics_address":  true,
}

// ReadPreseed reads and checks a preseed of at most MaxPreseedSize bytes. An empty
// document is valid and does nothing, as with LXD.
func ReadPreseed(r io.Reader) (*Preseed, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxPreseedSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading the preseed: %w", err)
	}

	if len(data) > MaxPreseedSize {
		return nil, fmt.Errorf("the preseed is larger than %d bytes", MaxPreseedSize)
	}

	return ParsePreseed(data)
}

// ParsePreseed decodes and checks a preseed. Unknown keys are refused (LXD 5.0.2 is
// strict too), each error is one line naming the line and key, and a cluster
// certificate given by path is read here, so that applying changes nothing before every
// input is known good.
func ParsePreseed(data []byte) (*Preseed, error) {
	p := &Preseed{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(p)
	if errors.Is(err, io.EOF) {
		return p, nil
	}

	if err != nil {
		return nil, preseedYAMLError(err)
	}

	var more yaml.Node
	if dec.Decode(&more) != io.EOF {
		return nil, errors.New("invalid preseed: more than one YAML document")
	}

	err = p.Validate()
	if err != nil {
		return nil, err
	}

	return p, nil
}

// yamlErrorPatterns match yaml.v3's messages for an unknown key and for a value of the
// wrong kind. They are compiled on first use, not at every start of the CLI.
var yamlErrorPatterns = sync.OnceValues(func() (unknownField, cannot *regexp.Regexp) {
	return regexp.MustCompile(`^line (\d+): field (.+) not found in type (\S+)$`),
		regexp.MustCompile(`^line (\d+): cannot unmarshal !!(\w+) (?:` + "`" + `[^` + "`" + `]*` + "`" + ` )?into (\S+)$`)
})

// preseedSections names, for the errors, the Go types of the preseed's parts.
var preseedSections = map[string]string{
	"client.Preseed":             "at the top level (known: config, networks, storage_pools, profiles, projects, cluster)",
	"client.PreseedNetwork":      "in a network (known: name, type, description, config, project)",
	"api.StoragePoolsPost":       "in a storage pool (known: name, driver, description, config)",
	"api.ProfilesPost":           "in a profile (known: name, description, config, devices)",
	"api.ProjectsPost":           "in a project (known: name, description, config)",
	"client.PreseedCluster":      "in cluster (known: server_name, enabled, server_address, cluster_token, cluster_address, cluster_certificate, cluster_certificate_path, cluster_password, member_config)",
	"api.ClusterMemberConfigKey": "in a member_config entry (known: entity, name, key, value, description)",
}

// preseedYAMLError turns a YAML error into one readable line.
func preseedYAMLError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		msg := strings.Join(strings.Fields(strings.TrimPrefix(err.Error(), "yaml: ")), " ")
		return fmt.Errorf("invalid preseed YAML: %s", msg)
	}

	yamlUnknownField, yamlCannot := yamlErrorPatterns()
	parts := make([]string, 0, len(te.Errors))
	for _, e := range te.Errors {
		if m := yamlUnknownField.FindStringSubmatch(e); m != nil {
			where := preseedSections[m[3]]
			if where == "" {
				where = "in " + m[3]
			}

			parts = append(parts, fmt.Sprintf("line %s: unknown key %q %s", m[1], m[2], where))
			continue
		}

		if m := yamlCannot.FindStringSubmatch(e); m != nil {
			parts = append(parts, fmt.Sprintf("line %s: a %s where %s is expected", m[1], yamlKind(m[2]), goKind(m[3])))
			continue
		}

		parts = append(parts, e)
	}

	return fmt.Errorf("invalid preseed: %s", strings.Join(parts, "; "))
}

func yamlKind(tag string) string {
	switch tag {
	case "seq":
		return "list"
	case "map":
		return "mapping"
	default:
		return "scalar (" + tag + ")"
	}
}

func goKind(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping"
	case strings.Contains(t, "."):
		return "a mapping"
	default:
		return "a " + t
	}
}

// Validate checks what can be checked without a server: limits, names, duplicates,
// scalar config values, and the cluster section (a join preseed sets member-local keys
// only and creates nothing: the cluster's definitions replace this server's).
func (p *Preseed) Validate() error {
	if len(p.Config) > maxPreseedKeys {
		return fmt.Errorf("invalid preseed: config has %d keys, more than %d", len(p.Config), maxPreseedKeys)
	}

	p.config = make(map[string]string, len(p.Config))
	for k, v := range p.Config {
		s, err := scalarString(v)
		if err != nil {
			return fmt.Errorf("invalid preseed: config key %q: %w", k, err)
		}

		p.config[k] = s
	}

	err := p.validateLists()
	if err != nil {
		return err
	}

	if p.Cluster == nil {
		return nil
	}

	return p.validateCluster()
}

func (p *Preseed) validateLists() error {
	type entry struct {
		name   string
		config map[string]string
		extra  int // devices
	}

	sections := map[string][]entry{}
	for _, n := range p.Networks {
		// A network is known by its project and name.
		sections["networks"] = append(sections["networks"], entry{projectOr(n.Project) + "/" + n.Name, n.Config, 0})
		if n.Name == "" {
			return errors.New("invalid preseed: a network has no name")
		}
	}

	for _, sp := range p.StoragePools {
		sections["storage_pools"] = append(sections["storage_pools"], entry{sp.Name, sp.Config, 0})
		if sp.Name != "" && sp.Driver == "" {
			return fmt.Errorf("invalid preseed: storage pool %q has no driver", sp.Name)
		}
	}

	for _, pr := range p.Profiles {
		sections["profiles"] = append(sections["profiles"], entry{pr.Name, pr.Config, len(pr.Devices)})
		for dev, cfg := range pr.Devices {
			if len(cfg) > maxPreseedKeys {
				return fmt.Errorf("invalid preseed: device %q of profile %q has more than %d keys", dev, pr.Name, maxPreseedKeys)
			}
		}
	}

	for _, pj := range p.Projects {
		sections["projects"] = append(sections["projects"], entry{pj.Name, pj.Config, 0})
	}

	names := []string{"networks", "storage_pools", "profiles", "projects"}
	for _, sec := range names {
		list := sections[sec]
		if len(list) > maxPreseedEntries {
			return fmt.Errorf("invalid preseed: %s has %d entries, more than %d", sec, len(list), maxPreseedEntries)
		}

		seen := map[string]bool{}
		for _, e := range list {
			if e.name == "" || strings.HasSuffix(e.name, "/") {
				return fmt.Errorf("invalid preseed: an entry of %s has no name", sec)
			}

			if seen[e.name] {
				return fmt.Errorf("invalid preseed: %s lists %q twice", sec, strings.TrimPrefix(e.name, "default/"))
			}

			seen[e.name] = true
			if len(e.config) > maxPreseedKeys || e.extra > maxPreseedKeys {
				return fmt.Errorf("invalid preseed: %s entry %q has more than %d keys or devices", sec, e.name, maxPreseedKeys)
			}
		}
	}

	return nil
}

func (p *Preseed) validateCluster() error {
	c := p.Cluster
	if len(c.MemberConfig) > maxPreseedEntries {
		return fmt.Errorf("invalid preseed: cluster member_config has %d entries, more than %d", len(c.MemberConfig), maxPreseedEntries)
	}

	if c.ClusterPassword != "" {
		return errors.New("invalid preseed: cluster_password joins are not supported by Berth: use cluster_token (from `berth cluster add` or `lxc cluster add`)")
	}

	if c.ClusterToken == "" {
		if c.ClusterAddress != "" || c.ClusterCertificate != "" || c.ClusterCertificatePath != "" {
			return errors.New("invalid preseed: joining a cluster needs cluster_token")
		}

		if c.Enabled && c.ServerName == "" {
			return errors.New("invalid preseed: enabling clustering needs cluster.server_name")
		}

		return nil
	}

	if !c.Enabled {
		return errors.New("invalid preseed: cluster.enabled must be true to join a cluster")
	}

	tok, err := decodeJoinToken(c.ClusterToken)
	if err != nil {
		return fmt.Errorf("invalid preseed: cluster_token: %w", err)
	}

	if c.ServerName == "" {
		c.ServerName = tok.ServerName
	} else if tok.ServerName != "" && c.ServerName != tok.ServerName {
		return fmt.Errorf("invalid preseed: the cluster_token is for a member named %q, not %q", tok.ServerName, c.ServerName)
	}

	if c.ClusterCertificatePath != "" {
		data, err := readSmallFile(c.ClusterCertificatePath, maxPreseedCertSize)
		if err != nil {
			return fmt.Errorf("invalid preseed: cluster_certificate_path: %w", err)
		}

		c.ClusterCertificate = string(data)
	}

	if c.ClusterCertificate != "" {
		fp, err := certFingerprint(c.ClusterCertificate)
		if err != nil {
			return fmt.Errorf("invalid preseed: cluster_certificate: %w", err)
		}

		if !strings.EqualFold(fp, tok.Fingerprint) {
			return errors.New("invalid preseed: cluster_certificate is not the certificate the cluster_token names")
		}
	}

	// The cluster's inventory and configuration replace this server's at the join:
	// anything else the preseed would create here would be lost, or clash.
	for _, sec := range []struct {
		name string
		n    int
	}{{"networks", len(p.Networks)}, {"storage_pools", len(p.StoragePools)}, {"profiles", len(p.Profiles)}, {"projects", len(p.Projects)}} {
		if sec.n > 0 {
			return fmt.Errorf("invalid preseed: a preseed that joins a cluster cannot have %s: the cluster's replace this server's (define them on the cluster)", sec.name)
		}
	}

	keys := make([]string, 0, len(p.config))
	for k := range p.config {
		keys = append(keys, k)
	}

	sort.Strings(keys)
	for _, k := range keys {
		if !memberLocalKeys[k] {
			return fmt.Errorf("invalid preseed: a preseed that joins a cluster can set only this member's addresses, not config key %q: the cluster's configuration replaces this server's", k)
		}
	}

	return nil
}

// IsJoin reports whether the preseed joins a cluster.
func (p *Preseed) IsJoin() bool { return p.Cluster != nil && p.Cluster.ClusterToken != "" }

// IsEmpty reports whether the preseed asks for nothing.
func (p *Preseed) IsEmpty() bool {
	return len(p.Config) == 0 && len(p.Networks) == 0 && len(p.StoragePools) == 0 && len(p.Profiles) == 0 &&
		len(p.Projects) == 0 && (p.Cluster == nil || !p.Cluster.Enabled)
}

// scalarString is a config value as LXD stores it: scalars only, printed as they read.
func scalarString(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case bool, int, int64, uint64, float64:
		return fmt.Sprintf("%v", v), nil
	default:
		return "", fmt.Errorf("the value must be a string, number or boolean, not a %T", v)
	}
}

func projectOr(p string) string {
	if p == "" {
		return "default"
	}

	return p
}

// decodeJoinToken reads a cluster join token (base64 JSON, as `lxc cluster add` prints).
func decodeJoinToken(s string) (*api.ClusterMemberJoinToken, error) {
	s = strings.TrimSpace(s)
	if len(s) > maxPreseedTokenLen {
		return nil, fmt.Errorf("longer than %d bytes", maxPreseedTokenLen)
	}

	data, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		data, err = base64.RawStdEncoding.DecodeString(s)
	}

	if err != nil {
		return nil, errors.New("not a join token (not base64)")
	}

	tok := &api.ClusterMemberJoinToken{}
	err = json.Unmarshal(data, tok)
	if err != nil || tok.Fingerprint == "" || tok.Secret == "" || len(tok.Addresses) == 0 {
		return nil, errors.New("not a cluster join token (it needs a fingerprint, a secret and addresses)")
	}

	return tok, nil
}

// certFingerprint is the SHA-256 of a PEM certificate's DER, in hex.
func certFingerprint(certPEM string) (string, error) {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil || block.Type != "CERTIFICATE" {
		return "", errors.New("not a PEM certificate")
	}

	_, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("not a certificate: %w", err)
	}

	sum := sha256.Sum256(block.Bytes)
	return hex.EncodeToString(sum[:]), nil
}

// readSmallFile reads a regular file of at most max bytes (opened non-blocking: a FIFO
// must not hang the caller).
func readSmallFile(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}

	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}

	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}

	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}

	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}

	return data, nil
}
