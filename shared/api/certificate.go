package api

import "time"

// Certificate types: a client certificate is a full API client, a metrics
// certificate may only scrape /1.0/metrics.
const (
	CertificateTypeClient  = "client"
	CertificateTypeMetrics = "metrics"
)

// CertificatePut is what PUT and PATCH /1.0/certificates/{fingerprint} change.
type CertificatePut struct {
	Name       string   `json:"name" yaml:"name"`
	Type       string   `json:"type" yaml:"type"`
	Restricted bool     `json:"restricted" yaml:"restricted"`
	Projects   []string `json:"projects" yaml:"projects"`
	// Certificate (PEM) replaces the stored certificate; empty keeps it.
	Certificate string `json:"certificate" yaml:"certificate"`
}

// Certificate is a trusted certificate (GET /1.0/certificates/{fingerprint}).
type Certificate struct {
	Name        string   `json:"name" yaml:"name"`
	Type        string   `json:"type" yaml:"type"`
	Restricted  bool     `json:"restricted" yaml:"restricted"`
	Projects    []string `json:"projects" yaml:"projects"`
	Certificate string   `json:"certificate" yaml:"certificate"`
	Fingerprint string   `json:"fingerprint" yaml:"fingerprint"`
}

// CertificatesPost is the body of POST /1.0/certificates. A trusted caller adds
// Certificate (base64 DER or PEM) or asks for a join token (Token); an untrusted
// one adds its own TLS certificate by giving a token's secret, or the whole
// base64 token, in Password.
type CertificatesPost struct {
	Name        string   `json:"name" yaml:"name"`
	Type        string   `json:"type" yaml:"type"`
	Restricted  bool     `json:"restricted" yaml:"restricted"`
	Projects    []string `json:"projects" yaml:"projects"`
	Certificate string   `json:"certificate" yaml:"certificate"`
	Password    string   `json:"password" yaml:"password"`
	Token       bool     `json:"token" yaml:"token"`
}

// CertificateAddToken is what a join token carries, base64 (standard alphabet)
// of its JSON: `lxc remote add NAME TOKEN` dials Addresses, checks the server
// certificate against Fingerprint and sends the token back as the password.
type CertificateAddToken struct {
	ClientName  string    `json:"client_name" yaml:"client_name"`
	Fingerprint string    `json:"fingerprint" yaml:"fingerprint"`
	Addresses   []string  `json:"addresses" yaml:"addresses"`
	Secret      string    `json:"secret" yaml:"secret"`
	ExpiresAt   time.Time `json:"expires_at" yaml:"expires_at"`
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
