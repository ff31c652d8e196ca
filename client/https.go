package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/berth-dev/berth/shared/ws"
)

// DefaultPort is the HTTPS port of an address given without one (LXD's).
const DefaultPort = "8443"

// Timeouts of the HTTPS transport: a dead or silent server must not hang a
// command. Responses themselves are bounded by the caller's context (an exec
// or an image upload may legitimately take long).
const (
	dialTimeout      = 10 * time.Second
	handshakeTimeout = 10 * time.Second
)

// HTTPSArgs are the identities of an HTTPS connection.
type HTTPSArgs struct {
	// ClientCert and ClientKey are the PEM certificate and key presented to
	// the server. Empty: none, the server sees an untrusted caller.
	ClientCert, ClientKey []byte
	// ServerCert is the PEM certificate the server must present, compared
	// byte for byte (pinned: its name, issuer and dates do not matter, the
	// user accepted this very certificate). Empty: the system roots verify
	// the server's certificate against the host name.
	ServerCert []byte
}

// CertificateMismatchError is a server presenting another certificate than
// the pinned one.
type CertificateMismatchError struct {
	Want, Got string // fingerprints
}

func (e *CertificateMismatchError) Error() string {
	return fmt.Sprintf("the server's certificate changed: it presented %s, not the saved %s", e.Got, e.Want)
}

// ConnectHTTPS returns a client for the server at addr (https://HOST[:PORT],
// see NormalizeURL). It sends no request.
func ConnectHTTPS(addr string, args HTTPSArgs) (*Client, error) {
	base, err := NormalizeURL(addr)
	if err != nil {
		return nil, err
	}

	conf, err := tlsConfig(args)
	if err != nil {
		return nil, err
	}

	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	transport := httpsTransport(dialer, conf)

	u, _ := url.Parse(base)

	return &Client{
		baseURL:   base,
		wsURL:     "wss://" + u.Host,
		http:      &http.Client{Transport: transport, CheckRedirect: refuseRedirect},
		ws:        ws.NewDialer(ws.DialConfig{Dial: dialer.DialContext, TLS: conf, Proxy: http.ProxyFromEnvironment}),
		userAgent: "berth/" + Version,
	}, nil
}

// NormalizeURL turns HOST, HOST:PORT, IP, [IPv6]:PORT or https://... into
// https://HOST:PORT, the form kept in the configuration. Paths, queries,
// user names and other schemes are refused.
func NormalizeURL(addr string) (string, error) {
	raw := addr
	if !strings.Contains(addr, "://") {
		raw = "https://" + addr
	}

	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("invalid server address %q: %w", addr, err)
	}

	switch {
	case u.Scheme != "https":
		return "", fmt.Errorf("invalid server address %q: only https:// is supported", addr)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("invalid server address %q: no host", addr)
	case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("invalid server address %q: give only https://HOST[:PORT]", addr)
	}

	port := u.Port()
	if port == "" {
		port = DefaultPort
	}

	return "https://" + net.JoinHostPort(u.Hostname(), port), nil
}

// tlsConfig is the 5.0 client's TLS policy: TLS 1.3 only, the client
// certificate if any, and the pinned server certificate or the system roots.
func tlsConfig(args HTTPSArgs) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS13}

	if len(args.ClientCert) > 0 || len(args.ClientKey) > 0 {
		pair, err := tls.X509KeyPair(args.ClientCert, args.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("loading the client certificate: %w", err)
		}

		conf.Certificates = []tls.Certificate{pair}
	}

	if len(args.ServerCert) == 0 {
		return conf, nil
	}

	pinned, err := ParseCertificate(args.ServerCert)
	if err != nil {
		return nil, fmt.Errorf("loading the server certificate: %w", err)
	}

	// The chain check is replaced, not skipped: VerifyConnection accepts
	// exactly the pinned certificate and nothing else.
	conf.InsecureSkipVerify = true
	conf.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the server presented no certificate")
		}

		peer := cs.PeerCertificates[0]
		if !bytes.Equal(peer.Raw, pinned.Raw) {
			return &CertificateMismatchError{Want: Fingerprint(pinned), Got: Fingerprint(peer)}
		}

		return nil
	}

	return conf, nil
}

// GetServerCertificate connects to addr (as NormalizeURL takes it) and
// returns the certificate the server presents, unverified: the caller shows
// its fingerprint to the user or compares it with a token's. No client
// certificate is sent.
func GetServerCertificate(ctx context.Context, addr string) (*x509.Certificate, error) {
	base, err := NormalizeURL(addr)
	if err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(ctx, dialTimeout+handshakeTimeout)
	defer cancel()

	d := tls.Dialer{
		NetDialer: &net.Dialer{Timeout: dialTimeout},
		// Unverified on purpose: this is how a certificate is first met.
		Config: &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true},
	}

	conn, err := d.DialContext(ctx, "tcp", strings.TrimPrefix(base, "https://"))
	if err != nil {
		return nil, fmt.Errorf("fetching the certificate of %s: %w", base, err)
	}

	defer func() { _ = conn.Close() }()

	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, fmt.Errorf("fetching the certificate of %s: the server presented none", base)
	}

	return certs[0], nil
}

// Fingerprint is a certificate's fingerprint as LXD shows it: lowercase hex
// SHA-256 of its DER bytes.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// ParseCertificate reads the first certificate of a PEM text.
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM certificate found")
		}

		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

// EncodeCertificate is cert as PEM.
func EncodeCertificate(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

// responseHeaderTimeout bounds the wait for a response's headers over HTTPS.
const responseHeaderTimeout = 2 * time.Minute

// refuseRedirect: the LXD API never redirects. Following one would resend the request
// body (a join token, a config) to wherever the server says, possibly over plain HTTP,
// outside the pinned certificate.
func refuseRedirect(req *http.Request, via []*http.Request) error {
	return fmt.Errorf("the server redirected to %s: refusing to follow", req.URL.Redacted())
}
