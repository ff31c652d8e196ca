package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"os/user"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berth-dev/berth/shared/atomicfile"
)

// certValidity is how long a generated client certificate is valid (LXD's
// ten years: a trust entry outliving its certificate is a surprise).
const certValidity = 10 * 365 * 24 * time.Hour

// ClientCertPath and ClientKeyPath are the client's TLS identity.
func (c *Config) ClientCertPath() string { return filepath.Join(c.Dir, "client.crt") }

// ClientKeyPath is the client's private key (mode 0600).
func (c *Config) ClientKeyPath() string { return filepath.Join(c.Dir, "client.key") }

// HasClientCertificate reports whether both files of the identity exist.
func (c *Config) HasClientCertificate() bool {
	_, errCrt := os.Stat(c.ClientCertPath())
	_, errKey := os.Stat(c.ClientKeyPath())
	return errCrt == nil && errKey == nil
}

// ClientCertificate returns the PEM certificate and key, generating them on
// first use. A key readable by group or others is refused (like ssh does):
// it would let any local user act as this client on every remote.
func (c *Config) ClientCertificate() (cert, key []byte, err error) {
	if !c.HasClientCertificate() {
		err := c.generateClientCertificate()
		if err != nil {
			return nil, nil, err
		}
	}

	fi, err := os.Stat(c.ClientKeyPath())
	if err != nil {
		return nil, nil, err
	}

	if fi.Mode().Perm()&0o077 != 0 {
		return nil, nil, fmt.Errorf("%s is accessible by other users (mode %04o): run chmod 600 on it", c.ClientKeyPath(), fi.Mode().Perm())
	}

	cert, err = os.ReadFile(c.ClientCertPath())
	if err != nil {
		return nil, nil, fmt.Errorf("reading the client certificate: %w", err)
	}

	key, err = os.ReadFile(c.ClientKeyPath())
	if err != nil {
		return nil, nil, fmt.Errorf("reading the client key: %w", err)
	}

	return cert, key, nil
}

// generateClientCertificate makes a self-signed ECDSA P-384 client-auth
// certificate and its key, as lxc does. A lock keeps two commands started at
// once from writing a key and a certificate that do not match.
func (c *Config) generateClientCertificate() error {
	err := os.MkdirAll(c.Dir, 0o700)
	if err != nil {
		return fmt.Errorf("creating the configuration directory: %w", err)
	}

	unlock, err := lockFile(filepath.Join(c.Dir, ".client.lock"))
	if err != nil {
		return err
	}

	defer unlock()

	if c.HasClientCertificate() {
		return nil
	}

	if c.OnGenerate != nil {
		c.OnGenerate()
	}

	certPEM, keyPEM, err := newClientCertificate()
	if err != nil {
		return fmt.Errorf("generating the client certificate: %w", err)
	}

	// The key first: a certificate without its key is never seen.
	err = atomicfile.WriteDurable(c.ClientKeyPath(), keyPEM, 0o600)
	if err != nil {
		return err
	}

	return atomicfile.WriteDurable(c.ClientCertPath(), certPEM, 0o644)
}

func newClientCertificate() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}

	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}

	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"berth"}, CommonName: identity()},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}

	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}

	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}

	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})

	return certPEM, keyPEM, nil
}

// identity is user@host, the common name servers show in their trust list.
func identity() string {
	name := "berth"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}

	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}

	return name + "@" + host
}

// lockFile takes an exclusive flock on path, creating it (0600).
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking the configuration directory: %w", err)
	}

	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}

	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("locking the configuration directory: %w", err)
	}

	return func() { _ = f.Close() }, nil
}

// readServerCert returns the pinned certificate of remote name, nil if none.
func (c *Config) readServerCert(name string) ([]byte, error) {
	data, err := os.ReadFile(c.ServerCertPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}

	if err != nil {
		return nil, fmt.Errorf("reading the certificate of remote %q: %w", name, err)
	}

	return data, nil
}

// SaveServerCert pins certPEM as remote name's certificate.
func (c *Config) SaveServerCert(name string, certPEM []byte) error {
	err := os.MkdirAll(filepath.Join(c.Dir, "servercerts"), 0o700)
	if err != nil {
		return fmt.Errorf("creating the server certificate directory: %w", err)
	}

	return atomicfile.WriteDurable(c.ServerCertPath(name), certPEM, 0o644)
}
