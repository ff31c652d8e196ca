package listener

import (
	"crypto/tls"
)

// ServerTLSConfig is the HTTPS listeners' TLS configuration, LXD 5.0's without its
// LXD_INSECURE_TLS escape: TLS 1.3 only (the 5.0 client refuses less anyway, and
// TLS 1.3 has no weak suites to choose from), a client certificate requested but not
// verified against any CA (trust is the SHA-256 of the certificate being in the trust
// store, checked per request), HTTP/1.1 only (websockets need it; LXD offers h2 for
// its cluster's gRPC, which berthd has not).
func ServerTLSConfig(cert *Cert) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		ClientAuth:   tls.RequestClientCert,
		Certificates: []tls.Certificate{cert.KeyPair},
		NextProtos:   []string{"http/1.1"},
	}
}
