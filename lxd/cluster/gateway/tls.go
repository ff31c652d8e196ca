package gateway

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// tlsConfigs returns the listen and dial configurations for the cluster certificate.
//
// Trust is pinning, not a CA: the peer must present exactly the cluster certificate.
// Member certificates are self-signed server certificates (no client-auth usage, names
// of whichever host made them), so chain verification would refuse them. No session
// resumption: the pin is checked on every handshake.
func tlsConfigs(cert tls.Certificate) (listen, dial *tls.Config, err error) {
	if len(cert.Certificate) == 0 || cert.PrivateKey == nil {
		return nil, nil, errors.New("cluster certificate and key are required")
	}

	want := cert.Certificate[0]
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 || !bytes.Equal(raw[0], want) {
			return errors.New("peer does not present the cluster certificate")
		}

		return nil
	}

	// go-dqlite's proxy takes a configuration with ClientCAs for the server side: the
	// pool holds the cluster certificate, though the pin alone decides.
	leaf, err := x509.ParseCertificate(want)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing the cluster certificate: %w", err)
	}

	pool := x509.NewCertPool()
	pool.AddCert(leaf)

	listen = &tls.Config{
		MinVersion:             tls.VersionTLS12,
		Certificates:           []tls.Certificate{cert},
		ClientCAs:              pool,
		ClientAuth:             tls.RequireAnyClientCert,
		VerifyPeerCertificate:  verify,
		SessionTicketsDisabled: true,
	}

	dial = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		// The pin in VerifyPeerCertificate is the verification; names do not matter.
		InsecureSkipVerify:    true, //nolint:gosec // pinned by VerifyPeerCertificate
		VerifyPeerCertificate: verify,
	}

	return listen, dial, nil
}
