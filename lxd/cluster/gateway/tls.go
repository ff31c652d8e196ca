package gateway

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// tlsState is the cluster certificate the node presents and the certificates it
// accepts from peers. It changes while the node runs when the cluster certificate is
// replaced (PUT /1.0/cluster/certificate): during the swap a peer may present either
// the old or the new one (SetCert), afterwards only the new one.
type tlsState struct {
	mu     sync.RWMutex
	cur    tls.Certificate
	accept [][]byte // the DER of each leaf accepted from a peer; cur's is always in it
}

func (s *tlsState) current() *tls.Certificate {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.cur
	return &c
}

func (s *tlsState) verify(raw [][]byte, _ [][]*x509.Certificate) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(raw) > 0 && slices.ContainsFunc(s.accept, func(want []byte) bool { return bytes.Equal(raw[0], want) }) {
		return nil
	}

	return errors.New("peer does not present the cluster certificate")
}

func (s *tlsState) set(cert tls.Certificate, alsoAccept [][]byte) error {
	if len(cert.Certificate) == 0 || cert.PrivateKey == nil {
		return errors.New("cluster certificate and key are required")
	}

	accept := [][]byte{cert.Certificate[0]}
	for _, der := range alsoAccept {
		if !bytes.Equal(der, cert.Certificate[0]) {
			accept = append(accept, der)
		}
	}

	s.mu.Lock()
	s.cur, s.accept = cert, accept
	s.mu.Unlock()
	return nil
}

// tlsConfigs returns the listen and dial configurations for the cluster certificate.
//
// Trust is pinning, not a CA: the peer must present exactly the cluster certificate
// (or, during a swap, the other one of the two). Member certificates are self-signed
// server certificates (no client-auth usage, names of whichever host made them), so
// chain verification would refuse them. No session resumption: the pin is checked on
// every handshake. The certificate is read at each handshake, so a swap needs no
// restart (connections already made stay as they are).
func tlsConfigs(cert tls.Certificate) (state *tlsState, listen, dial *tls.Config, err error) {
	state = &tlsState{}
	err = state.set(cert, nil)
	if err != nil {
		return nil, nil, nil, err
	}

	// go-dqlite's proxy takes a configuration with ClientCAs for the server side: the
	// pool holds the cluster certificate, though the pin alone decides.
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, nil, nil, fmt.Errorf("parsing the cluster certificate: %w", err)
	}

	pool := x509.NewCertPool()
	pool.AddCert(leaf)

	listen = &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return state.current(), nil
		},
		ClientCAs:              pool,
		ClientAuth:             tls.RequireAnyClientCert,
		VerifyPeerCertificate:  state.verify,
		SessionTicketsDisabled: true,
	}

	dial = &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return state.current(), nil
		},
		// The pin in VerifyPeerCertificate is the verification; names do not matter.
		InsecureSkipVerify:    true, //nolint:gosec // pinned by VerifyPeerCertificate
		VerifyPeerCertificate: state.verify,
	}

	return state, listen, dial, nil
}

// SetCert replaces the cluster certificate the node presents, accepting from peers
// the new one and the leaves (DER) of alsoAccept: the old one while the members swap,
// none once they all have. Connections already made are kept.
func (g *Gateway) SetCert(cert tls.Certificate, alsoAccept ...[]byte) error {
	return g.tls.set(cert, alsoAccept)
}
