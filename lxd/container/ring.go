package container

import (
	"encoding/binary"
	"sync"
)

// consoleRingSize bounds how much console output the monitor keeps.
const consoleRingSize = 256 << 10

// ring keeps the last len(buf) bytes written to it. The monitor's lives in its
// shared page (handoff.go), where the idle holder (lxd/nsexec/hold.c) goes on
// writing it with the same rules: meta holds where the next byte goes and
// whether buf has wrapped, as two native-endian uint32s.
type ring struct {
	mu   sync.Mutex
	meta []byte
	buf  []byte
}

// newRing is a ring of its own memory (tests).
func newRing(size int) *ring { return &ring{meta: make([]byte, 8), buf: make([]byte, size)} }

func (r *ring) pos() (next int, full bool) {
	next = int(binary.NativeEndian.Uint32(r.meta))
	if next >= len(r.buf) {
		next = 0 // never from us; a torn page must not crash the monitor
	}

	return next, binary.NativeEndian.Uint32(r.meta[4:]) != 0
}

func (r *ring) setPos(next int, full bool) {
	binary.NativeEndian.PutUint32(r.meta, uint32(next))

	var f uint32
	if full {
		f = 1
	}

	binary.NativeEndian.PutUint32(r.meta[4:], f)
}

func (r *ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()

	n := len(p)
	next, full := r.pos()

	if len(p) > len(r.buf) {
		p = p[len(p)-len(r.buf):]
		full = true
	}

	c := copy(r.buf[next:], p)
	if c < len(p) {
		copy(r.buf, p[c:])
		full = true
	}

	next = (next + len(p)) % len(r.buf)
	if next == 0 && len(p) > 0 {
		full = true
	}

	r.setPos(next, full)

	return n, nil
}

// Bytes returns the kept output, oldest first.
func (r *ring) Bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()

	next, full := r.pos()
	if !full {
		return append([]byte(nil), r.buf[:next]...)
	}

	out := make([]byte, 0, len(r.buf))
	out = append(out, r.buf[next:]...)

	return append(out, r.buf[:next]...)
}

// Reset forgets everything kept so far.
func (r *ring) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()

	r.setPos(0, false)
}
