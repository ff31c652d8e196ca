package container

import (
	"bytes"
	"testing"
)

func TestRingReset(t *testing.T) {
	r := newRing(8)
	_, _ = r.Write([]byte("0123456789"))
	r.Reset()

	if got := r.Bytes(); len(got) != 0 {
		t.Fatalf("after Reset: %q", got)
	}

	_, _ = r.Write([]byte("ab"))
	if got := r.Bytes(); string(got) != "ab" {
		t.Fatalf("after Reset and a write: %q", got)
	}
}

func TestConsoleMuxOneClient(t *testing.T) {
	var x consoleMux

	// Nobody attached: output is dropped here (the ring keeps it).
	x.write([]byte("early"))

	s, ok := x.attach()
	if !ok {
		t.Fatal("first attach refused")
	}

	_, ok = x.attach()
	if ok {
		t.Fatal("second attach accepted")
	}

	x.write([]byte("hello"))

	if got := <-s.out; !bytes.Equal(got, []byte("hello")) {
		t.Fatalf("got %q", got)
	}

	x.detach(s)

	s2, ok := x.attach()
	if !ok {
		t.Fatal("attach after detach refused")
	}

	// A client that stops reading is cut off instead of blocking the drain.
	for i := 0; i < attachQueue+1; i++ {
		x.write([]byte("x"))
	}

	select {
	case <-s2.gone:
	default:
		t.Fatal("slow client not ended")
	}
}
