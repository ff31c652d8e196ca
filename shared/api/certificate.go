package api

import "time"

// Certificate types.
const (
	CertificateTypeClient  = "client"
	CertificateTypeMetrics = "metrics"
	CertificateTypeServer  = "server"
)

// CertificatePut is the writable part of a trusted certificate.
type CertificatePut struct {
	Name       string   `json:"name" yaml:"name"`
	Type       string   `json:"type" yaml:"type"`
	Restricted bool     `json:"restricted" yaml:"restricted"`
	Projects   []string `json:"projects" yaml:"projects"`
	// Certificate is the PEM certificate (in a POST: PEM or base64 DER; empty
	// means the caller's own TLS client certificate).
	Certificate string `json:"certificate" yaml:"certificate"`
}

// Certificate is a trusted certificate (GET /1.0/certificates/{fingerprint}).
type Certificate struct {
	CertificatePut `yaml:",inline"`

	Fingerprint string `json:"fingerprint" yaml:"fingerprint"`
}

// CertificatesPost is the body of POST /1.0/certificates: add a certificate
// (Token false, Password optionally a join token), or create a join token
// (Token true).
type CertificatesPost struct {
	CertificatePut `yaml:",inline"`

	Password string `json:"password" yaml:"password"`
	Token    bool   `json:"token" yaml:"token"`
}

// CertificateAddToken is what a join token carries, base64 (standard
// alphabet) of its JSON, as the 5.0 client builds and reads it.
type CertificateAddToken struct {
	ClientName  string    `json:"client_name"`
	Fingerprint string    `json:"fingerprint"`
	Addresses   []string  `json:"addresses"`
	Secret      string    `json:"secret"`
	ExpiresAt   time.Time `json:"expires_at,omitempty"`
}

// ServerUntrusted is GET /1.0 for a caller the server does not trust: no
// configuration and no environment.
type ServerUntrusted struct {
	APIExtensions []string `json:"api_extensions" yaml:"api_extensions"`
	APIStatus     string   `json:"api_status" yaml:"api_status"`
	APIVersion    string   `json:"api_version" yaml:"api_version"`
	Auth          string   `json:"auth" yaml:"auth"`
	Public        bool     `json:"public" yaml:"public"`
	AuthMethods   []string `json:"auth_methods" yaml:"auth_methods"`
}
