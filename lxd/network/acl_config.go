package network

import (
	"fmt"
	"strings"
)

// MaxACLsPerNetwork caps security.acls.
const MaxACLsPerNetwork = 16

// isACLList accepts a comma list of ACL names.
func isACLList(v string) error {
	names := strings.Split(v, ",")
	if len(names) > MaxACLsPerNetwork {
		return fmt.Errorf("more than %d ACLs", MaxACLsPerNetwork)
	}

	for _, n := range names {
		err := ValidACLName(strings.TrimSpace(n))
		if err != nil {
			return err
		}
	}

	return nil
}

// isACLAction accepts a default action.
func isACLAction(v string) error {
	switch v {
	case "allow", "reject", "drop":
		return nil
	}

	return fmt.Errorf("%q is not allow, reject or drop", v)
}

// ValidACLName checks an ACL name: 1 to 63 letters, digits, '-', '_' and '.', not "." or
// "..", starting with a letter or digit.
func ValidACLName(name string) error {
	if name == "" || len(name) > 63 || name == "." || name == ".." {
		return fmt.Errorf("ACL name %q: 1 to 63 characters", name)
	}

	for i, c := range name {
		alnum := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		if !alnum && (i == 0 || (c != '-' && c != '_' && c != '.')) {
			return fmt.Errorf("ACL name %q: letters, digits, '-', '_' and '.', starting with a letter or digit", name)
		}
	}

	return nil
}

// ACLNames reads security.acls: the names, trimmed, empty entries dropped.
func ACLNames(config map[string]string) []string {
	out := []string{}
	for _, n := range strings.Split(config["security.acls"], ",") {
		n = strings.TrimSpace(n)
		if n != "" {
			out = append(out, n)
		}
	}

	return out
}

// NIC-level ACL keys (a bridged NIC's security.acls and default actions, as LXD's).
const (
	nicACLs          = "security.acls"
	nicIngressAction = "security.acls.default.ingress.action"
	nicEgressAction  = "security.acls.default.egress.action"
)

// PortACL is a NIC's own ACL config; the zero value is a NIC without one.
type PortACL struct {
	Names           []string
	Ingress, Egress string // default actions, "" for the network's
}

// NICACL reads a NIC device's ACL keys, checking their syntax (not that the ACLs exist).
func NICACL(conf map[string]string) (PortACL, error) {
	var p PortACL
	if v := conf[nicACLs]; v != "" {
		err := isACLList(v)
		if err != nil {
			return p, fmt.Errorf("invalid %s: %w", nicACLs, err)
		}

		p.Names = ACLNames(conf)
	}

	for k, dst := range map[string]*string{nicIngressAction: &p.Ingress, nicEgressAction: &p.Egress} {
		v := conf[k]
		if v == "" {
			continue
		}

		err := isACLAction(v)
		if err != nil {
			return p, fmt.Errorf("invalid %s: %w", k, err)
		}

		*dst = v
	}

	return p, nil
}

// Key encodes p for the port's firewall record ("" for the zero value).
func (p PortACL) Key() string {
	if len(p.Names) == 0 && p.Ingress == "" && p.Egress == "" {
		return ""
	}

	return strings.Join(p.Names, ",") + ";" + p.Ingress + ";" + p.Egress
}

// ParsePortACL decodes a Key.
func ParsePortACL(key string) PortACL {
	var p PortACL
	names, rest, _ := strings.Cut(key, ";")
	p.Ingress, p.Egress, _ = strings.Cut(rest, ";")
	for _, n := range strings.Split(names, ",") {
		if n != "" {
			p.Names = append(p.Names, n)
		}
	}

	return p
}

// ACLHooks connect the running networks to the ACLs in the database (lxd/networks).
type ACLHooks struct {
	// Apply rewrites the ACL rules of a bridge's ports (a port came with ACLs).
	Apply func(bridge string) error
	// Check refuses ACL names that do not exist (a 400).
	Check func(names []string) error
}
