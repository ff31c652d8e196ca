package container

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The monitor's shared page: one memfd the monitor keeps for the container's
// whole run, whichever program it runs (hold.go). Its first handoffHeader
// bytes say what one program hands the next across execve (fds, init, the
// state to report); the console ring follows, so the console output kept so
// far never needs copying. Pages of a memfd exist once written: an idle
// container's ring costs what its console printed, up to consoleRingSize.
//
// The layout is struct hold_header in lxd/nsexec/hold.c (which asserts these
// offsets); all fields native-endian.
const (
	handoffMagic    = 0x424d4f4e // "BMON"
	handoffVersion  = 1
	handoffHeader   = 4096
	handoffMaxConns = 64
	handoffPathMax  = 512
	handoffStateMax = 1024

	offMagic     = 0
	offVersion   = 4
	offInitPID   = 8
	offPidFD     = 12
	offMaster    = 16
	offSlave     = 20
	offListener  = 24
	offFrozenFmt = 28
	offTerm      = 32
	offNConns    = 36
	offRingSize  = 40
	offRingMeta  = 44 // ring_next, ring_full: the ring's own (ring.go)
	offStateLen  = 52
	offStatusAt  = 56
	offReboots   = 60
	offStartedNs = 64
	offConns     = 128 // handoffMaxConns × {int32 fd, uint32 kind}
	offFrozen    = offConns + handoffMaxConns*8
	offState     = offFrozen + handoffPathMax
)

// Kinds of the connections handed over with the monitor.
const (
	connRequest uint32 = 1 // nothing answered yet: its request is (still) on the socket
	connWatch   uint32 = 2 // a watch whose state was sent: it waits for the exit
	connConsole uint32 = 3 // an attached console (only from the holder)
)

// shared is the monitor's shared page, mapped.
type shared struct {
	f   *os.File
	mem []byte
}

// newShared makes the page for a ring of size bytes.
func newShared(size int) (*shared, error) {
	fd, err := unix.MemfdCreate("berth-monitor", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("creating the monitor's memfd: %w", err)
	}

	f := os.NewFile(uintptr(fd), "berth-monitor")

	err = f.Truncate(int64(handoffHeader + size))
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("sizing the monitor's memfd: %w", err)
	}

	s, err := mapShared(f)
	if err != nil {
		return nil, err
	}

	s.put32(offMagic, handoffMagic)
	s.put32(offVersion, handoffVersion)
	s.put32(offRingSize, uint32(size))

	return s, nil
}

// openShared maps the page a holder handed over as fd.
func openShared(fd int) (*shared, error) {
	f := os.NewFile(uintptr(fd), "berth-monitor")

	s, err := mapShared(f)
	if err != nil {
		return nil, err
	}

	if s.get32(offMagic) != handoffMagic || s.get32(offVersion) != handoffVersion ||
		int(s.get32(offRingSize)) != len(s.mem)-handoffHeader {
		_ = s.close()
		return nil, errors.New("the monitor's memfd has an unknown layout")
	}

	return s, nil
}

func mapShared(f *os.File) (*shared, error) {
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("reading the monitor's memfd: %w", err)
	}

	if st.Size() <= handoffHeader || st.Size() > handoffHeader+consoleRingSize {
		_ = f.Close()
		return nil, fmt.Errorf("the monitor's memfd has %d bytes", st.Size())
	}

	mem, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("mapping the monitor's memfd: %w", err)
	}

	return &shared{f: f, mem: mem}, nil
}

func (s *shared) close() error {
	err := unix.Munmap(s.mem)
	return errors.Join(err, s.f.Close())
}

// ring is the console ring in the page.
func (s *shared) ring() *ring {
	return &ring{meta: s.mem[offRingMeta : offRingMeta+8], buf: s.mem[handoffHeader:]}
}

func (s *shared) get32(off int) uint32 { return binary.NativeEndian.Uint32(s.mem[off:]) }

func (s *shared) put32(off int, v uint32) { binary.NativeEndian.PutUint32(s.mem[off:], v) }

func (s *shared) get64(off int) uint64 { return binary.NativeEndian.Uint64(s.mem[off:]) }

func (s *shared) put64(off int, v uint64) { binary.NativeEndian.PutUint64(s.mem[off:], v) }

func (s *shared) getFD(off int) int { return int(int32(s.get32(off))) }

func (s *shared) putFD(off int, fd int) { s.put32(off, uint32(int32(fd))) }
