package confine

import (
	"fmt"
	"slices"
	"strings"
)

// The instance config keys of the seccomp policy, as LXD has them.
const (
	KeyDenyDefault = "security.syscalls.deny_default" // LXD's default deny list (default true)
	KeyDeny        = "security.syscalls.deny"         // more names to deny
	KeyDenyCompat  = "security.syscalls.deny_compat"  // block every 32-bit (i386) system call
	KeyAllow       = "security.syscalls.allow"        // allowlist mode: only these
)

// DefaultDeny is LXD's default deny list; umount2 with MNT_FORCE is denied
// along with it (a forced unmount could pull a mount from under the host's
// or a neighbour's feet on shared filesystems).
var DefaultDeny = []string{"kexec_load", "kexec_file_load", "open_by_handle_at", "init_module", "finit_module", "delete_module"}

// maxNames bounds a deny or allow list; every x86_64 system call fits.
const maxNames = 1024

// Policy is a container's seccomp policy. The zero value denies nothing
// and compiles to no filter.
type Policy struct {
	DenyDefault bool     // DefaultDeny and umount2(MNT_FORCE)
	Deny        []string // more names, denied on every ABI where they exist
	DenyCompat  bool     // every i386 system call denied
	Allow       []string // allowlist mode: only these (exclusive with the above)
}

// DefaultPolicy is what a container gets without security.syscalls.* keys.
func DefaultPolicy() Policy { return Policy{DenyDefault: true} }

// PolicyFromConfig reads the policy from an instance's expanded config,
// checking every name and that allow is not mixed with a deny key.
func PolicyFromConfig(config map[string]string) (Policy, error) {
	p := DefaultPolicy()

	for _, k := range []string{KeyDenyDefault, KeyDenyCompat} {
		v, ok := config[k]
		if !ok {
			continue
		}

		b, err := parseBool(v)
		if err != nil {
			return Policy{}, fmt.Errorf("%s: %w", k, err)
		}

		if k == KeyDenyDefault {
			p.DenyDefault = b
		} else {
			p.DenyCompat = b
		}
	}

	var err error

	p.Deny, err = ParseNames(config[KeyDeny])
	if err != nil {
		return Policy{}, fmt.Errorf("%s: %w", KeyDeny, err)
	}

	p.Allow, err = ParseNames(config[KeyAllow])
	if err != nil {
		return Policy{}, fmt.Errorf("%s: %w", KeyAllow, err)
	}

	if len(p.Allow) == 0 {
		return p, nil
	}

	// As in LXD: an allowlist replaces the deny lists. deny_default set to
	// true on purpose conflicts; left unset (true by default) it does not.
	_, explicitDefault := config[KeyDenyDefault]

	switch {
	case len(p.Deny) > 0:
		return Policy{}, fmt.Errorf("%s cannot be combined with %s", KeyAllow, KeyDeny)
	case p.DenyCompat:
		return Policy{}, fmt.Errorf("%s cannot be combined with %s", KeyAllow, KeyDenyCompat)
	case explicitDefault && p.DenyDefault:
		return Policy{}, fmt.Errorf("%s cannot be combined with %s=true", KeyAllow, KeyDenyDefault)
	}

	if !slices.Contains(p.Allow, "execve") {
		return Policy{}, fmt.Errorf("%s must include execve, or no process could start", KeyAllow)
	}

	return Policy{Allow: p.Allow}, nil
}

// ValidateNames checks a deny or allow list value (for the config key
// validators): every name must be a system call of x86_64 or i386.
func ValidateNames(v string) error {
	_, err := ParseNames(v)
	return err
}

// ParseNames splits a list of system call names, separated by commas,
// whitespace or line breaks, and checks each.
func ParseNames(v string) ([]string, error) {
	fields := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
	if len(fields) > maxNames {
		return nil, fmt.Errorf("%d system calls listed, at most %d", len(fields), maxNames)
	}

	var names []string

	for _, f := range fields {
		if !isName(f) {
			return nil, fmt.Errorf("%q is not a system call name", truncate(f))
		}

		_, native := lookup(syscallsAMD64, f)
		_, compat := lookup(syscalls386, f)

		if !native && !compat {
			return nil, fmt.Errorf("unknown system call %q", f)
		}

		if !slices.Contains(names, f) {
			names = append(names, f)
		}
	}

	return names, nil
}

// isName matches [a-z_][a-z0-9_]* (no regexp: this package is linked
// into every re-exec of berthd and must cost nothing at start).
func isName(s string) bool {
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r == '_' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}

	return s != ""
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}

	return s
}

// parseBool accepts LXD's spellings of a boolean ("" is false).
func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "", "false", "0", "no", "off":
		return false, nil
	case "true", "1", "yes", "on":
		return true, nil
	}

	return false, fmt.Errorf("%q is not a boolean", truncate(v))
}

// key is the canonical form of p, for the compile cache.
func (p Policy) key() string {
	return fmt.Sprintf("%t|%t|%s|%s", p.DenyDefault, p.DenyCompat, strings.Join(p.Deny, ","), strings.Join(p.Allow, ","))
}
