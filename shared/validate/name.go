// Package validate checks user-supplied names and values before they reach the daemon's state.
package validate

import (
	"fmt"
	"strings"
)

// InstanceName checks a name against LXD's hostname rules (RFC 1123 label):
// 1 to 63 characters of ASCII letters, digits and '-', not starting with a digit or '-',
// not ending with '-'.
func InstanceName(name string) error {
	if name == "" {
		return fmt.Errorf("name is empty")
	}

	if len(name) > 63 {
		return fmt.Errorf("name %q is longer than 63 characters", name)
	}

	for i, c := range name {
		ok := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
		if !ok {
			return fmt.Errorf("name %q contains %q: only letters, digits and '-' are allowed", name, c)
		}

		if i == 0 && (c == '-' || (c >= '0' && c <= '9')) {
			return fmt.Errorf("name %q must start with a letter", name)
		}
	}

	if strings.HasSuffix(name, "-") {
		return fmt.Errorf("name %q must not end with '-'", name)
	}

	return nil
}

// EntityName checks the name of a profile, network, pool or image alias:
// non-empty, at most 255 bytes, no '/', no control characters, not "." or "..".
func EntityName(kind, name string) error {
	if name == "" {
		return fmt.Errorf("%s name is empty", kind)
	}

	if len(name) > 255 {
		return fmt.Errorf("%s name is longer than 255 characters", kind)
	}

	if name == "." || name == ".." || strings.ContainsAny(name, "/\\") {
		return fmt.Errorf("%s name %q is not allowed", kind, name)
	}

	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("%s name %q contains a control character", kind, name)
		}
	}

	return nil
}

// AliasName checks an image alias. Unlike other names it may contain '/' (as in
// "debian/12"), but not empty segments, "." or ".." segments, or control characters.
func AliasName(name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("alias name must be 1 to 255 characters")
	}

	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("alias name %q has an empty, \".\" or \"..\" segment", name)
		}
	}

	for _, c := range name {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return fmt.Errorf("alias name %q contains a control character or '\\'", name)
		}
	}

	return nil
}
