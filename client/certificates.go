package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/shared/api"
)

func certificatePath(fingerprint string) string {
	return "/1.0/certificates/" + url.PathEscape(fingerprint)
}

// GetCertificates returns the trusted certificates.
func (c *Client) GetCertificates(ctx context.Context) ([]api.Certificate, error) {
	certs := []api.Certificate{}
	_, err := c.queryStruct(ctx, http.MethodGet, "/1.0/certificates?recursion=1", nil, "", &certs)
	if err != nil {
		return nil, err
	}

	return certs, nil
}

// GetCertificate returns one trusted certificate and its ETag; LXD servers
// also take a unique prefix of the fingerprint.
func (c *Client) GetCertificate(ctx context.Context, fingerprint string) (*api.Certificate, string, error) {
	cert := api.Certificate{}
	etag, err := c.queryStruct(ctx, http.MethodGet, certificatePath(fingerprint), nil, "", &cert)
	if err != nil {
		return nil, "", err
	}

	return &cert, etag, nil
}

// CreateCertificate adds a certificate to the trust store. With an empty
// req.Certificate the server adds the caller's own TLS client certificate,
// which an untrusted caller may do with a join token in req.Password.
func (c *Client) CreateCertificate(ctx context.Context, req api.CertificatesPost) error {
	req.Token = false
	if req.Type == "" {
		req.Type = api.CertificateTypeClient
	}

	_, err := c.queryStruct(ctx, http.MethodPost, "/1.0/certificates", req, "", nil)
	return err
}

// CreateCertificateToken asks the server for a join token for a client to be
// called name: a token operation whose metadata TokenFromOperation reads.
// The operation stays running until the token is used, revoked or expires;
// nobody waits for it.
func (c *Client) CreateCertificateToken(ctx context.Context, name, certType string) (*api.Operation, error) {
	if certType == "" {
		certType = api.CertificateTypeClient
	}

	req := api.CertificatesPost{CertificatePut: api.CertificatePut{Name: name, Type: certType}, Token: true}
	resp, _, err := c.query(ctx, http.MethodPost, "/1.0/certificates", req, "")
	if err != nil {
		return nil, err
	}

	if resp.Type != api.AsyncResponse {
		return nil, fmt.Errorf("POST /1.0/certificates: expected a token operation, got a %q response", resp.Type)
	}

	return resp.MetadataAsOperation()
}

// DeleteCertificate removes a certificate from the trust store.
func (c *Client) DeleteCertificate(ctx context.Context, fingerprint string) error {
	_, _, err := c.query(ctx, http.MethodDelete, certificatePath(fingerprint), nil, "")
	return err
}

// GetOperations returns the server's operations of every status.
func (c *Client) GetOperations(ctx context.Context) ([]api.Operation, error) {
	byStatus := map[string][]api.Operation{}
	_, err := c.queryStruct(ctx, http.MethodGet, "/1.0/operations?recursion=1", nil, "", &byStatus)
	if err != nil {
		return nil, err
	}

	var ops []api.Operation
	for _, list := range byStatus {
		ops = append(ops, list...)
	}

	return ops, nil
}

// DeleteOperation cancels an operation (for a token operation: revokes the
// token).
func (c *Client) DeleteOperation(ctx context.Context, id string) error {
	_, _, err := c.query(ctx, http.MethodDelete, "/1.0/operations/"+url.PathEscape(id), nil, "")
	return err
}
