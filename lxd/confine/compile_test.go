package confine

import (
	"encoding/binary"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// decide runs f's program in x/net/bpf's VM on a struct seccomp_data. The
// VM loads words big endian where the kernel loads them native: so each
// 32-bit field is written big endian here, which is what the program
// sees on x86_64.
func decide(t *testing.T, f *Filter, arch, nr uint32, args ...uint64) uint32 {
	t.Helper()

	if f == nil {
		return unix.SECCOMP_RET_ALLOW
	}

	raw, err := decode(f.Program)
	if err != nil {
		t.Fatal(err)
	}

	insts, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("program does not disassemble")
	}

	vm, err := bpf.NewVM(insts)
	if err != nil {
		t.Fatal(err)
	}

	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[offNr:], nr)
	binary.BigEndian.PutUint32(data[offArch:], arch)

	for i, a := range args {
		binary.BigEndian.PutUint32(data[offArgs+8*i:], uint32(a))
		binary.BigEndian.PutUint32(data[offArgs+8*i+4:], uint32(a>>32))
	}

	// The VM returns the accept length; a seccomp return value is the
	// constant, which it hands back unchanged.
	n, err := vm.Run(data)
	if err != nil {
		t.Fatal(err)
	}

	return uint32(n)
}

func nrOf(t *testing.T, table []syscallNr, name string) uint32 {
	t.Helper()

	nr, ok := lookup(table, name)
	if !ok {
		t.Fatalf("no %s in table", name)
	}

	return nr
}

func mustCompile(t *testing.T, config map[string]string) *Filter {
	t.Helper()

	f, err := FromConfig(config)
	if err != nil {
		t.Fatal(err)
	}

	return f
}

const (
	x86  = unix.AUDIT_ARCH_X86_64
	i386 = unix.AUDIT_ARCH_I386
)

func TestDefaultPolicyDecisions(t *testing.T) {
	f := mustCompile(t, nil)
	if f == nil || f.Allowlist {
		t.Fatalf("default policy compiled to %+v", f)
	}

	for _, name := range DefaultDeny {
		if got := decide(t, f, x86, nrOf(t, syscallsAMD64, name)); got != retEPERM {
			t.Errorf("x86_64 %s: %#x, want EPERM", name, got)
		}

		nr, ok := lookup(syscalls386, name)
		if ok {
			if got := decide(t, f, i386, nr); got != retEPERM {
				t.Errorf("i386 %s: %#x, want EPERM", name, got)
			}
		}
	}

	for _, name := range []string{"read", "write", "execve", "mount", "keyctl", "add_key", "clone3", "getpid"} {
		if got := decide(t, f, x86, nrOf(t, syscallsAMD64, name)); got != unix.SECCOMP_RET_ALLOW {
			t.Errorf("x86_64 %s: %#x, want allow", name, got)
		}
	}

	if got := decide(t, f, i386, nrOf(t, syscalls386, "getpid")); got != unix.SECCOMP_RET_ALLOW {
		t.Errorf("i386 getpid: %#x, want allow", got)
	}

	// A number means different calls per ABI: 283 is kexec_load on i386,
	// timerfd_create on x86_64.
	if got := decide(t, f, x86, 283); got != unix.SECCOMP_RET_ALLOW {
		t.Errorf("x86_64 283 (timerfd_create): %#x, want allow", got)
	}

	if got := decide(t, f, i386, 283); got != retEPERM {
		t.Errorf("i386 283 (kexec_load): %#x, want EPERM", got)
	}

	// umount2: only MNT_FORCE is refused, on both ABIs; the high half of
	// the flags is ignored, as the kernel does.
	for _, c := range []struct {
		arch  uint32
		table []syscallNr
	}{{x86, syscallsAMD64}, {i386, syscalls386}} {
		nr := nrOf(t, c.table, "umount2")
		for flags, want := range map[uint64]uint32{
			0:                      unix.SECCOMP_RET_ALLOW,
			unix.MNT_DETACH:        unix.SECCOMP_RET_ALLOW,
			unix.MNT_EXPIRE:        unix.SECCOMP_RET_ALLOW,
			unix.MNT_FORCE:         retEPERM,
			unix.MNT_FORCE | 2:     retEPERM,
			1<<32 | unix.MNT_FORCE: retEPERM,
			1 << 32:                unix.SECCOMP_RET_ALLOW,
		} {
			if got := decide(t, f, c.arch, nr, 0, flags); got != want {
				t.Errorf("arch %#x umount2 flags %#x: %#x, want %#x", c.arch, flags, got, want)
			}
		}
	}

	// x32 numbers are refused whatever the call; unknown arches too.
	for _, nr := range []uint32{x32Bit, x32Bit | 39, x32Bit | 528, 0xffffffff} {
		if got := decide(t, f, x86, nr); got != retEPERM {
			t.Errorf("x32 %#x: %#x, want EPERM", nr, got)
		}
	}

	if got := decide(t, f, unix.AUDIT_ARCH_AARCH64, 0); got != retEPERM {
		t.Errorf("aarch64: %#x, want EPERM", got)
	}
}

func TestDenyCompatBlocksEvery32BitCall(t *testing.T) {
	f := mustCompile(t, map[string]string{KeyDenyCompat: "true"})

	for _, nr := range []uint32{0, 1, 20, 283, 400} {
		if got := decide(t, f, i386, nr); got != retEPERM {
			t.Errorf("i386 %d: %#x, want EPERM", nr, got)
		}
	}

	if got := decide(t, f, x86, nrOf(t, syscallsAMD64, "getpid")); got != unix.SECCOMP_RET_ALLOW {
		t.Errorf("x86_64 getpid: %#x, want allow", got)
	}

	if got := decide(t, f, x86, nrOf(t, syscallsAMD64, "kexec_load")); got != retEPERM {
		t.Errorf("x86_64 kexec_load: %#x, want EPERM", got)
	}
}

func TestExtraDenyAndDefaultOff(t *testing.T) {
	f := mustCompile(t, map[string]string{KeyDeny: "mknod,\nmknodat userfaultfd", KeyDenyDefault: "false"})

	for _, name := range []string{"mknod", "mknodat", "userfaultfd"} {
		if got := decide(t, f, x86, nrOf(t, syscallsAMD64, name)); got != retEPERM {
			t.Errorf("x86_64 %s: %#x, want EPERM", name, got)
		}

		if got := decide(t, f, i386, nrOf(t, syscalls386, name)); got != retEPERM {
			t.Errorf("i386 %s: %#x, want EPERM", name, got)
		}
	}

	// deny_default=false lets the default list and forced unmounts through.
	if got := decide(t, f, x86, nrOf(t, syscallsAMD64, "kexec_load")); got != unix.SECCOMP_RET_ALLOW {
		t.Errorf("kexec_load with deny_default=false: %#x, want allow", got)
	}

	if got := decide(t, f, x86, nrOf(t, syscallsAMD64, "umount2"), 0, unix.MNT_FORCE); got != unix.SECCOMP_RET_ALLOW {
		t.Errorf("forced umount2 with deny_default=false: %#x, want allow", got)
	}

	// An explicit umount2 deny wins over the MNT_FORCE check.
	g := mustCompile(t, map[string]string{KeyDeny: "umount2"})
	if got := decide(t, g, x86, nrOf(t, syscallsAMD64, "umount2"), 0, 0); got != retEPERM {
		t.Errorf("umount2 denied by name: %#x, want EPERM", got)
	}

	// Nothing to deny: no filter at all.
	none := mustCompile(t, map[string]string{KeyDenyDefault: "false"})
	if none != nil {
		t.Errorf("empty policy compiled to %d bytes", len(none.Program))
	}
}

func TestAllowlist(t *testing.T) {
	f := mustCompile(t, map[string]string{KeyAllow: "execve\nread,write exit_group kexec_load", KeyDenyDefault: "false"})
	if !f.Allowlist {
		t.Fatal("allowlist not marked")
	}

	for name, want := range map[string]uint32{"execve": unix.SECCOMP_RET_ALLOW, "read": unix.SECCOMP_RET_ALLOW,
		"kexec_load": unix.SECCOMP_RET_ALLOW, "getpid": retEPERM, "open": retEPERM} {
		if got := decide(t, f, x86, nrOf(t, syscallsAMD64, name)); got != want {
			t.Errorf("x86_64 %s: %#x, want %#x", name, got, want)
		}

		if got := decide(t, f, i386, nrOf(t, syscalls386, name)); got != want {
			t.Errorf("i386 %s: %#x, want %#x", name, got, want)
		}
	}

	if got := decide(t, f, x86, x32Bit|59); got != retEPERM {
		t.Errorf("x32 execve: %#x, want EPERM", got)
	}
}

func TestLongListsStayWithinJumpRange(t *testing.T) {
	// Every x86_64 call allowed: the longest program a config can ask for.
	names := make([]string, 0, len(syscallsAMD64))
	for _, s := range syscallsAMD64 {
		names = append(names, s.name)
	}

	f := mustCompile(t, map[string]string{KeyAllow: strings.Join(names, ",")})

	for _, s := range syscallsAMD64 {
		if got := decide(t, f, x86, s.nr); got != unix.SECCOMP_RET_ALLOW {
			t.Fatalf("%s: %#x, want allow", s.name, got)
		}
	}

	if got := decide(t, f, i386, nrOf(t, syscalls386, "waitpid")); got != retEPERM {
		t.Errorf("i386-only waitpid: %#x, want EPERM", got)
	}
}

func TestPolicyValidation(t *testing.T) {
	bad := []struct {
		config map[string]string
		want   string
	}{
		{map[string]string{KeyDeny: "kexec_load,no_such_call"}, `unknown system call "no_such_call"`},
		{map[string]string{KeyAllow: "execve,Read"}, `"Read" is not a system call name`},
		{map[string]string{KeyDeny: "a;b"}, `"a;b" is not a system call name`},
		{map[string]string{KeyDenyCompat: "maybe"}, `"maybe" is not a boolean`},
		{map[string]string{KeyAllow: "execve", KeyDeny: "read"}, "cannot be combined with " + KeyDeny},
		{map[string]string{KeyAllow: "execve", KeyDenyCompat: "true"}, "cannot be combined with " + KeyDenyCompat},
		{map[string]string{KeyAllow: "execve", KeyDenyDefault: "true"}, "cannot be combined with " + KeyDenyDefault},
		{map[string]string{KeyAllow: "read,write"}, "must include execve"},
		{map[string]string{KeyDeny: strings.Repeat("read,", maxNames+1)}, "at most"},
	}

	for _, c := range bad {
		_, err := FromConfig(c.config)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.config, err, c.want)
		}
	}

	// An i386-only or x86_64-only name is a system call.
	for _, v := range []string{"waitpid", "kexec_file_load", "", " , \n"} {
		err := ValidateNames(v)
		if err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}

	// Allow with deny_default explicitly off, or left unset, is fine.
	for _, c := range []map[string]string{{KeyAllow: "execve"}, {KeyAllow: "execve", KeyDenyDefault: "false"}} {
		_, err := FromConfig(c)
		if err != nil {
			t.Errorf("%v: %v", c, err)
		}
	}
}

func TestCompileIsCachedPerPolicy(t *testing.T) {
	a := mustCompile(t, map[string]string{KeyDeny: "mknod"})
	b := mustCompile(t, map[string]string{KeyDeny: "mknod"})
	c := mustCompile(t, map[string]string{KeyDeny: "mknodat"})

	if a != b {
		t.Error("same policy compiled twice")
	}

	if a == c {
		t.Error("different policies share a filter")
	}
}

// BenchmarkCompile is the cost of building the default filter when it is
// not cached (once per daemon and policy).
func BenchmarkCompile(b *testing.B) {
	for range b.N {
		_, err := compile(DefaultPolicy())
		if err != nil {
			b.Fatal(err)
		}
	}
}
