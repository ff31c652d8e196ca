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
