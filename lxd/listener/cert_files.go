package listener

import (
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

// LoadCertFiles reads and parses a certificate and its key from dir.
func LoadCertFiles(dir, certName, keyName string) (*Cert, error) {
	certPEM, keyPEM, err := ReadCertFiles(dir, certName, keyName)
	if err != nil {
		return nil, err
	}

	return parseCert(certPEM, keyPEM)
}

// ParseCert parses a PEM certificate and key (a pair received from another member).
func ParseCert(certPEM, keyPEM []byte) (*Cert, error) { return parseCert(certPEM, keyPEM) }

// WriteCertFiles writes a certificate and key into dir, both 0600, the key first: a
// certificate on disk always has its key beside it.
func WriteCertFiles(dir, certName, keyName string, certPEM, keyPEM []byte) error {
	err := atomicfile.WriteDurable(filepath.Join(dir, keyName), keyPEM, 0o600)
	if err != nil {
		return err
	}

	return atomicfile.WriteDurable(filepath.Join(dir, certName), certPEM, 0o600)
}
