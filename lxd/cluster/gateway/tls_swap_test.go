package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"testing"
	"time"
)

func testPair(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	tmpl := x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "c"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}

	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// The node's certificate is swapped without new configurations: the listen and dial
// configurations present the current one, and peers are accepted with the current one
// or, during a swap, the other one given.
func TestTLSStateSwap(t *testing.T) {
	oldPair, newPair, stranger := testPair(t), testPair(t), testPair(t)
	state, listen, dial, err := tlsConfigs(oldPair)
	if err != nil {
		t.Fatal(err)
	}

	presented := func() []byte {
		c, _ := listen.GetCertificate(nil)
		d, _ := dial.GetClientCertificate(nil)
		if string(c.Certificate[0]) != string(d.Certificate[0]) {
			t.Fatal("listen and dial present different certificates")
		}

		return c.Certificate[0]
	}

	accepts := func(p tls.Certificate) bool {
		return listen.VerifyPeerCertificate([][]byte{p.Certificate[0]}, nil) == nil
	}
	if string(presented()) != string(oldPair.Certificate[0]) || !accepts(oldPair) || accepts(newPair) || accepts(stranger) {
		t.Fatal("before the swap: only the old certificate")
	}

	_ = state.set(oldPair, [][]byte{newPair.Certificate[0]}) // prepared
	if string(presented()) != string(oldPair.Certificate[0]) || !accepts(oldPair) || !accepts(newPair) || accepts(stranger) {
		t.Error("prepared: presents the old one, accepts both")
	}

	_ = state.set(newPair, [][]byte{oldPair.Certificate[0]}) // committed
	if string(presented()) != string(newPair.Certificate[0]) || !accepts(oldPair) || !accepts(newPair) {
		t.Error("committed: presents the new one, accepts both")
	}

	_ = state.set(newPair, nil) // finished
	if !accepts(newPair) || accepts(oldPair) || dial.VerifyPeerCertificate([][]byte{oldPair.Certificate[0]}, nil) == nil {
		t.Error("finished: the old certificate is still accepted")
	}

	if state.set(tls.Certificate{}, nil) == nil {
		t.Error("an empty certificate was taken")
	}
}

// When a swap ends, a connection a peer made to the node with the old certificate is
// closed (a removed member keeps no database connection); one made with the new
// certificate stays open.
func TestTLSStateSwapClosesOldConnections(t *testing.T) {
	oldPair, newPair := testPair(t), testPair(t)
	state, listen, _, err := tlsConfigs(newPair)
	if err != nil {
		t.Fatal(err)
	}

	_ = state.set(newPair, [][]byte{oldPair.Certificate[0]}) // committed: both accepted
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = l.Close() }()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}

			go func() {
				s := tls.Server(c, listen)
				if s.Handshake() != nil {
					_ = c.Close()
					return
				}

				_, _ = io.Copy(io.Discard, s) // as the proxy: until either side closes
				_ = s.Close()
			}()
		}
	}()

	dial := func(p tls.Certificate) *tls.Conn {
		c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{Certificates: []tls.Certificate{p}, InsecureSkipVerify: true}) //nolint:gosec // test peer
		if err != nil {
			t.Fatal(err)
		}

		t.Cleanup(func() { _ = c.Close() })
		// TLS 1.3: the server checks the client's certificate after the client's
		// handshake returns; a write and a read round trip make sure it did.
		_, _ = c.Write([]byte("x"))
		return c
	}

	withOld, withNew := dial(oldPair), dial(newPair)
	closedWithin := func(c *tls.Conn, d time.Duration) bool {
		_ = c.SetReadDeadline(time.Now().Add(d))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}

	if closedWithin(withOld, 200*time.Millisecond) || closedWithin(withNew, 200*time.Millisecond) {
		t.Fatal("during the swap a connection was closed")
	}

	_ = state.set(newPair, nil) // finished
	if !closedWithin(withOld, 5*time.Second) {
		t.Error("the connection made with the old certificate is still open after the swap")
	}

	if closedWithin(withNew, 200*time.Millisecond) {
		t.Error("the connection made with the new certificate was closed")
	}
}
