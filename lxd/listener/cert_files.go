package listener

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/shared/atomicfile"
)

// The cluster certificate's files in the state directory (issue 16): every member serves
// it and presents it to the others.
const (
	ClusterCertFile = "cluster.crt"
	ClusterKeyFile  = "cluster.key"
)

// ReadCertFiles reads a certificate and its key from dir with the checks of the server
// certificate's files (regular, owned by the daemon, at most 64 KiB, mode tightened).
func ReadCertFiles(dir, certName, keyName string) (certPEM, keyPEM []byte, err error) {
	certPEM, err = readPrivate(filepath.Join(dir, certName))
	if err != nil {
		return nil, nil, err
	}

	keyPEM, err = readPrivate(filepath.Join(dir, keyName))
	if err != nil {
		return nil, nil, err
	}

	return certPEM, keyPEM, nil
}

// LoadCertFiles reads and parses a certificate and its key from dir, first finishing a
// replacement of the pair that a crash interrupted (see WriteCertFiles).
func LoadCertFiles(dir, certName, keyName string) (*Cert, error) {
	err := finishCertFiles(dir, certName, keyName)
	if err != nil {
		return nil, err
	}

	certPEM, keyPEM, err := ReadCertFiles(dir, certName, keyName)
	if err != nil {
		return nil, err
	}

	return parseCert(certPEM, keyPEM)
}

// ParseCert parses a PEM certificate and key (a pair received from another member).
func ParseCert(certPEM, keyPEM []byte) (*Cert, error) { return parseCert(certPEM, keyPEM) }

// nextSuffix names the new pair's files while a replacement is under way.
const nextSuffix = ".next"

// WriteCertFiles writes a certificate and key into dir, both 0600, so that a crash at any
// point leaves either the old pair or the new one (never a key and a certificate that do
// not match: a member could not start with those). Both are written whole as NAME.next
// first, then renamed key first; the certificate's .next file is the commit mark:
// LoadCertFiles finishes the renames when it exists, and drops a lone key.next otherwise.
func WriteCertFiles(dir, certName, keyName string, certPEM, keyPEM []byte) error {
	key, cert := filepath.Join(dir, keyName), filepath.Join(dir, certName)
	err := atomicfile.WriteDurable(key+nextSuffix, keyPEM, 0o600)
	if err != nil {
		return err
	}

	err = atomicfile.WriteDurable(cert+nextSuffix, certPEM, 0o600)
	if err != nil {
		_ = os.Remove(key + nextSuffix)
		return err
	}

	return finishCertFiles(dir, certName, keyName)
}

// finishCertFiles completes a pair replacement WriteCertFiles began (see there).
func finishCertFiles(dir, certName, keyName string) error {
	key, cert := filepath.Join(dir, keyName), filepath.Join(dir, certName)
	_, err := os.Lstat(cert + nextSuffix)
	if errors.Is(err, fs.ErrNotExist) {
		err = os.Remove(key + nextSuffix)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}

		return nil
	}

	if err != nil {
		return err
	}

	err = os.Rename(key+nextSuffix, key)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replacing %s: %w", key, err) // renamed already: a crash came after
	}

	err = os.Rename(cert+nextSuffix, cert)
	if err != nil {
		return fmt.Errorf("replacing %s: %w", cert, err)
	}

	return syncDir(dir)
}

// syncDir makes the renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}

	defer func() { _ = d.Close() }()
	return d.Sync()
}
