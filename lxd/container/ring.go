package container

import "sync"

// consoleRingSize bounds how much console output the monitor keeps.
const consoleRingSize = 256 << 10

// ring keeps the last len(buf) bytes written to it.
type ring struct {
	mu   sync.Mutex
	buf  []byte
	next int  // where the next byte goes
	full bool // buf has wrapped at least once
}

func newRing(size int) *ring { return &ring{buf: make([]byte, size)} }

func (r *ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()

	n := len(p)
	if len(p) > len(r.buf) {
		p = p[len(p)-len(r.buf):]
		r.full = true
	}

	c := copy(r.buf[r.next:], p)
	if c < len(p) {
		copy(r.buf, p[c:])
		r.full = true
	}

	r.next = (r.next + len(p)) % len(r.buf)
	if r.next == 0 && len(p) > 0 {
		r.full = true
	}

	return n, nil
}

// Bytes returns the kept output, oldest first.
func (r *ring) Bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()

	if !r.full {
		return append([]byte(nil), r.buf[:r.next]...)
	}

	out := make([]byte, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)

	return append(out, r.buf[:r.next]...)
}

// Reset forgets everything kept so far.
func (r *ring) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()

	r.next, r.full = 0, false
}
