package gateway

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"syscall"
)

// tlsState is the cluster certificate the node presents and the certificates it
// accepts from peers. It changes while the node runs when the cluster certificate is
// replaced (PUT /1.0/cluster/certificate): during the swap a peer may present either
// the old or the new one (SetCert), afterwards only the new one.
type tlsState struct {
	mu     sync.RWMutex
	cur    tls.Certificate
	accept [][]byte // the DER of each leaf accepted from a peer; cur's is always in it

	// The connections peers made to this node, with the leaf each presented: when a
	// swap ends, those made with a certificate no longer accepted are closed (a removed
	// member holding the old key keeps no database connection).
	conns map[net.Conn][]byte
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

// verifyConn is verify for a connection made to this node, which it records under the
// same lock set takes: a connection is either refused or closed by a set that stops
// accepting its certificate, never missed between the two.
func (s *tlsState) verifyConn(conn net.Conn, raw [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(raw) == 0 || !slices.ContainsFunc(s.accept, func(want []byte) bool { return bytes.Equal(raw[0], want) }) {
		return errors.New("peer does not present the cluster certificate")
	}

	if s.conns == nil {
		s.conns = map[net.Conn][]byte{}
	}

	for c := range s.conns {
		if connClosed(c) {
			delete(s.conns, c)
		}
	}

	s.conns[conn] = raw[0]
	return nil
}

// connClosed says whether c was closed (by either side's proxy end).
func connClosed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}

	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}

	return rc.Control(func(uintptr) {}) != nil
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
	defer s.mu.Unlock()
	s.cur, s.accept = cert, accept
	for c, leaf := range s.conns {
		if !slices.ContainsFunc(accept, func(want []byte) bool { return bytes.Equal(leaf, want) }) {
			_ = c.Close()
			delete(s.conns, c)
		}
	}

	return nil
}

// tlsConfigs returns the listen and dial configurations for the cluster certificate.
//
// Trust is pinning, not a CA: the peer must present exactly the cluster certificate
// (or, during a swap, the other one of the two). Member certificates are self-signed
// server certificates (no client-auth usage, names of whichever host made them), so
// chain verification would refuse them. No session resumption: the pin is checked on
// every handshake. The certificate is read at each handshake, so a swap needs no
// restart; connections peers made with a certificate the swap stops accepting are
// closed when it does.
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

	// Each connection made to the node is checked by verifyConn, which records it.
	base := listen.Clone()
	listen.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		conn := hello.Conn
		cfg := base.Clone()
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			return state.verifyConn(conn, raw)
		}

		return cfg, nil
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
// none once they all have. Connections peers made with a certificate no longer accepted
// are closed.
func (g *Gateway) SetCert(cert tls.Certificate, alsoAccept ...[]byte) error {
	return g.tls.set(cert, alsoAccept)
}
