package confine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Filter is a compiled seccomp program: struct sock_filter entries in
// native byte order, ready for Load. It travels in the container's spec
// (to init) and to the exec helpers.
type Filter struct {
	Program []byte `json:"program"`

	// Allowlist says the program denies what it does not name: the code
	// between loading it and exec must then be minimal (one-shot exec
	// helper rather than the exec server's fork thread).
	Allowlist bool `json:"allowlist,omitempty"`
}

// Offsets in struct seccomp_data (little endian: an argument's low half
// comes first).
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// x32Bit marks x32 system call numbers in the x86_64 arch.
const x32Bit = 0x40000000

// retEPERM is what a denied call returns: the caller sees EPERM, as in
// LXD, rather than being killed.
const retEPERM = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)

// maxInsns is the kernel's BPF_MAXINSNS.
const maxInsns = 4096

// rule is one decision on one system call number: action, unless the
// argument check is there and fails.
type rule struct {
	nr     uint32
	action uint32
	argSet *argBits // only when these bits of an argument are set
	argIn  *argIn   // only when an argument is one of these values
}

type argIn struct {
	arg  int
	vals []uint32 // of the argument's low 32 bits (an ioctl's request is 32 bits)
}

type argBits struct {
	arg  int
	bits uint32 // of the argument's low 32 bits
}

var (
	cacheMu sync.Mutex
	cache   map[string]*Filter
)

// maxCached bounds the compile cache; past it, policies are compiled each
// time (they are cheap; the cache only saves repeats).
const maxCached = 64

// Compile builds the filter of a policy, once per distinct policy per
// daemon. A policy that denies nothing gives nil: no filter at all.
func Compile(p Policy) (*Filter, error) {
	if !p.DenyDefault && len(p.Deny) == 0 && !p.DenyCompat && len(p.Allow) == 0 {
		return nil, nil
	}

	k := p.key()

	cacheMu.Lock()
	f := cache[k]
	cacheMu.Unlock()

	if f != nil {
		return f, nil
	}

	f, err := compile(p)
	if err != nil {
		return nil, err
	}

	cacheMu.Lock()
	if cache == nil {
		cache = map[string]*Filter{}
	}

	if len(cache) < maxCached {
		cache[k] = f
	}
	cacheMu.Unlock()

	return f, nil
}

// FromConfig is PolicyFromConfig then Compile.
func FromConfig(config map[string]string) (*Filter, error) {
	p, err := PolicyFromConfig(config)
	if err != nil {
		return nil, err
	}

	return Compile(p)
}

// compile lays the program out as:
//
//	arch x86_64 → native rules; arch i386 → compat rules; other → EPERM
//	native: x32 numbers → EPERM; each rule; default
//	compat: each rule (or EPERM for all with DenyCompat); default
//
// Only the system call number and arch are loaded before a decision,
// except on the path of a rule with an argument check: so the kernel's
// seccomp action cache (Linux 5.11+) can prove every other allowed call
// allowed and skip the program for it. Each rule is self-contained
// (a match jumps at most a few instructions forward), so no jump offset
// can outgrow BPF's 8 bits whatever the list's length.
func compile(p Policy) (*Filter, error) {
	if runtime.GOARCH != "amd64" {
		return nil, fmt.Errorf("seccomp filters are built for x86_64 only, not %s", runtime.GOARCH)
	}

	native, compat, def := rules(p)

	nativeProg := append([]bpf.Instruction{
		bpf.LoadAbsolute{Off: offNr, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: x32Bit, SkipFalse: 1},
		bpf.RetConstant{Val: retEPERM},
	}, emit(native, def)...)

	var compatProg []bpf.Instruction
	if p.DenyCompat {
		compatProg = []bpf.Instruction{bpf.RetConstant{Val: retEPERM}}
	} else {
		compatProg = append([]bpf.Instruction{bpf.LoadAbsolute{Off: offNr, Size: 4}}, emit(compat, def)...)
	}

	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: offArch, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.AUDIT_ARCH_X86_64, SkipFalse: 1},
		bpf.Jump{Skip: 3}, // to native
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.AUDIT_ARCH_I386, SkipFalse: 1},
		bpf.Jump{Skip: uint32(1 + len(nativeProg))}, // to compat
		bpf.RetConstant{Val: retEPERM},              // an arch we do not know
	}
	prog = append(prog, nativeProg...)
	prog = append(prog, compatProg...)

	if len(prog) > maxInsns {
		return nil, fmt.Errorf("seccomp program of %d instructions, the kernel takes %d", len(prog), maxInsns)
	}

	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("assembling seccomp program: %w", err)
	}

	return &Filter{Program: encode(raw), Allowlist: len(p.Allow) > 0}, nil
}

// rules turns the policy into per-ABI rules and the default action.
func rules(p Policy) (native, compat []rule, def uint32) {
	if len(p.Allow) > 0 {
		for _, name := range p.Allow {
			native = appendRule(native, syscallsAMD64, name, unix.SECCOMP_RET_ALLOW, nil)
			compat = appendRule(compat, syscalls386, name, unix.SECCOMP_RET_ALLOW, nil)
		}

		return native, compat, retEPERM
	}

	var deny []string
	if p.DenyDefault {
		deny = append(deny, DefaultDeny...)
	}

	deny = append(deny, p.Deny...)

	for _, name := range deny {
		native = appendRule(native, syscallsAMD64, name, retEPERM, nil)
		compat = appendRule(compat, syscalls386, name, retEPERM, nil)
	}

	if p.DenyDefault {
		force := &argBits{arg: 1, bits: unix.MNT_FORCE}
		native = appendRule(native, syscallsAMD64, "umount2", retEPERM, force)
		compat = appendRule(compat, syscalls386, "umount2", retEPERM, force)

		btrfs := &argIn{arg: 1, vals: btrfsSubvolumeIoctls}
		native = appendRuleIn(native, syscallsAMD64, "ioctl", retEPERM, btrfs)
		compat = appendRuleIn(compat, syscalls386, "ioctl", retEPERM, btrfs)
	}

	return native, compat, unix.SECCOMP_RET_ALLOW
}

// appendRule adds name's rule if the ABI has that call and no unconditional
// rule on it exists yet (an explicit deny of umount2 wins over the
// MNT_FORCE check).
func appendRule(rs []rule, table []syscallNr, name string, action uint32, arg *argBits) []rule {
	nr, ok := lookup(table, name)
	if !ok {
		return rs
	}

	for _, r := range rs {
		if r.nr == nr && r.argSet == nil && r.argIn == nil {
			return rs
		}
	}

	return append(rs, rule{nr: nr, action: action, argSet: arg})
}

// appendRuleIn adds name's rule for some values of an argument, as appendRule.
func appendRuleIn(rs []rule, table []syscallNr, name string, action uint32, in *argIn) []rule {
	n := len(rs)
	rs = appendRule(rs, table, name, action, nil)
	if len(rs) > n {
		rs[n].argIn = in
	}

	return rs
}

// emit writes the rules with the number in A, then the default.
func emit(rs []rule, def uint32) []bpf.Instruction {
	var out []bpf.Instruction

	for _, r := range rs {
		if r.argIn != nil {
			// The argument replaces the number in A: decide here either way. Each
			// value jumps to the action, past the others and the default.
			n := len(r.argIn.vals)
			out = append(out,
				bpf.JumpIf{Cond: bpf.JumpEqual, Val: r.nr, SkipFalse: uint8(n + 3)},
				bpf.LoadAbsolute{Off: uint32(offArgs + 8*r.argIn.arg), Size: 4},
			)

			for i, v := range r.argIn.vals {
				out = append(out, bpf.JumpIf{Cond: bpf.JumpEqual, Val: v, SkipTrue: uint8(n - i)})
			}

			out = append(out, bpf.RetConstant{Val: def}, bpf.RetConstant{Val: r.action})
			continue
		}

		if r.argSet == nil {
			out = append(out,
				bpf.JumpIf{Cond: bpf.JumpEqual, Val: r.nr, SkipFalse: 1},
				bpf.RetConstant{Val: r.action},
			)

			continue
		}

		// The argument replaces the number in A: decide here either way.
		out = append(out,
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: r.nr, SkipFalse: 4},
			bpf.LoadAbsolute{Off: uint32(offArgs + 8*r.argSet.arg), Size: 4},
			bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: r.argSet.bits, SkipFalse: 1},
			bpf.RetConstant{Val: r.action},
			bpf.RetConstant{Val: def},
		)
	}

	return append(out, bpf.RetConstant{Val: def})
}

// encode lays raw instructions out as struct sock_filter.
func encode(raw []bpf.RawInstruction) []byte {
	b := make([]byte, 8*len(raw))

	for i, r := range raw {
		binary.NativeEndian.PutUint16(b[8*i:], r.Op)
		b[8*i+2] = r.Jt
		b[8*i+3] = r.Jf
		binary.NativeEndian.PutUint32(b[8*i+4:], r.K)
	}

	return b
}

// decode is encode's inverse (tests, and checking a program before Load).
func decode(b []byte) ([]bpf.RawInstruction, error) {
	if len(b)%8 != 0 || len(b)/8 > maxInsns {
		return nil, errors.New("malformed seccomp program")
	}

	raw := make([]bpf.RawInstruction, len(b)/8)
	for i := range raw {
		raw[i] = bpf.RawInstruction{
			Op: binary.NativeEndian.Uint16(b[8*i:]),
			Jt: b[8*i+2],
			Jf: b[8*i+3],
			K:  binary.NativeEndian.Uint32(b[8*i+4:]),
		}
	}

	return raw, nil
}
