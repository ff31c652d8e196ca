package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
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
