package listener

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berth-dev/berth/shared/atomicfile"
)

// Cert is the server's TLS identity, kept in the state directory as server.crt and
// server.key (both 0600, owned by the daemon's user).
type Cert struct {
	KeyPair     tls.Certificate
	PEM         string // the certificate, as GET /1.0 shows it
	Fingerprint string // lowercase hex SHA-256 of the DER bytes
}

// Names of the files in the state directory.
const (
	CertFile = "server.crt"
	KeyFile  = "server.key"
)

// maxPEM bounds what is read of either file.
const maxPEM = 64 << 10

// certValidity is LXD's: ten years, as nothing renews a self-signed certificate.
const certValidity = 10 * 365 * 24 * time.Hour

// Fingerprint returns the lowercase hex SHA-256 of a certificate's DER bytes: the name
// of a certificate in the API, the CLI and join tokens.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// LoadOrCreateCert reads the server certificate from dir, generating it on first start.
// A key without its certificate (a start that died half-way) is replaced; a certificate
// without its key is an error, as is either path being anything but a regular file.
// Modes wider than 0600 are tightened.
func LoadOrCreateCert(dir string) (*Cert, error) {
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	certPEM, certErr := readPrivate(certPath)
	keyPEM, keyErr := readPrivate(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		return parseCert(certPEM, keyPEM)
	case errors.Is(certErr, fs.ErrNotExist) && (keyErr == nil || errors.Is(keyErr, fs.ErrNotExist)):
		// First start (or an interrupted one): generate.
	case certErr != nil && !errors.Is(certErr, fs.ErrNotExist):
		return nil, certErr
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		return nil, keyErr
	default:
		return nil, fmt.Errorf("%s exists without %s: restore the key or remove both to get a new identity", certPath, keyPath)
	}

	certPEM, keyPEM, err := generateServerCert(hostNames(), hostAddresses())
	if err != nil {
		return nil, err
	}

	// The key first: a certificate on disk always has its key beside it.
	err = atomicfile.WriteDurable(keyPath, keyPEM, 0o600)
	if err == nil {
		err = atomicfile.WriteDurable(certPath, certPEM, 0o600)
	}

	if err != nil {
		return nil, err
	}

	return parseCert(certPEM, keyPEM)
}

func parseCert(certPEM, keyPEM []byte) (*Cert, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("loading server certificate: %w", err)
	}

	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("parsing server certificate: %w", err)
	}

	pair.Leaf = leaf
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})
	return &Cert{KeyPair: pair, PEM: string(block), Fingerprint: Fingerprint(leaf.Raw)}, nil
}

// generateServerCert makes a self-signed ECDSA P-384 server certificate, as LXD's. The
// 5.0 client pins it and uses its first DNS name as the TLS server name, so there is
// always one ("unspecified" when the host has no name).
func generateServerCert(names []string, addrs []net.IP) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating server key: %w", err)
	}

	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("generating serial number: %w", err)
	}

	if len(names) == 0 {
		names = []string{"unspecified"}
	}

	now := time.Now()
	tmpl := x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Berth"}, CommonName: "root@" + names[0]},
		NotBefore:             now.Add(-time.Minute), // clock skew between hosts
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              names,
		IPAddresses:           addrs,
	}

	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating server certificate: %w", err)
	}

	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding server key: %w", err)
	}

	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}

// hostNames is the host name and localhost: DNS SANs of the server certificate.
func hostNames() []string {
	var names []string
	h, err := os.Hostname()
	if err == nil && h != "" && h != "localhost" {
		names = append(names, h)
	}

	return append(names, "localhost")
}

// hostAddresses is every address of the host's interfaces but link-local ones.
func hostAddresses() []net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}

	var ips []net.IP
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLinkLocalUnicast() || n.IP.IsLinkLocalMulticast() {
			continue
		}

		ips = append(ips, n.IP)
	}

	return ips
}

// readPrivate reads a regular file without following a symlink, tightening a mode wider
// than 0600 (the key would otherwise stay readable by whoever could read it before).
func readPrivate(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("refusing %s: it is a symlink", path)
	}

	if err != nil {
		return nil, err
	}

	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}

	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("refusing %s: not a regular file", path)
	}

	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("refusing %s: owned by uid %d, not by the daemon", path, st.Uid)
	}

	if fi.Mode().Perm()&^0o600 != 0 {
		err = f.Chmod(0o600)
		if err != nil {
			return nil, fmt.Errorf("tightening mode of %s: %w", path, err)
		}
	}

	data, err := io.ReadAll(io.LimitReader(f, maxPEM+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}

	if len(data) > maxPEM {
		return nil, fmt.Errorf("refusing %s: larger than %d bytes", path, maxPEM)
	}

	return data, nil
}
