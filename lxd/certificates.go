package main

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/berth-dev/berth/lxd/etag"
	"github.com/berth-dev/berth/lxd/listener"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/lxd/trust"
	"github.com/berth-dev/berth/shared/api"
)

// GET /1.0/certificates
func certificatesGet(d *Daemon, r *http.Request) response.Response {
	certs, err := d.trust.List(r.Context())
	if err != nil {
		return response.SmartError(err)
	}

	if recursion(r) >= 1 {
		return response.SyncResponse(true, certs)
	}

	fps := make([]string, 0, len(certs))
	for _, c := range certs {
		fps = append(fps, c.Fingerprint)
	}

	return response.SyncResponse(true, urlsOf("certificates", fps))
}

// POST /1.0/certificates. An administrator adds a certificate or asks for a join token
// (token: true, answered with a token operation). Anyone else may only add the
// certificate of its own TLS connection, with a token as the password.
func certificatesPost(d *Daemon, r *http.Request) response.Response {
	req := api.CertificatesPost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	c := callerOf(r)
	if !c.Admin() {
		return certificatesPostWithToken(d, r, c, req)
	}

	put := api.CertificatePut{Name: req.Name, Type: req.Type, Restricted: req.Restricted, Projects: req.Projects}
	if req.Token {
		return certificateToken(d, req)
	}

	var cert *x509.Certificate
	switch {
	case req.Certificate != "":
		cert, err = trust.ParseCertificate(req.Certificate)
		if err != nil {
			return response.SmartError(err)
		}

	case r.TLS != nil && len(r.TLS.PeerCertificates) > 0:
		cert = r.TLS.PeerCertificates[0]
	default:
		return response.BadRequest(errors.New("no certificate given (certificate, or token: true for a join token)"))
	}

	if put.Name == "" {
		put.Name = cert.Subject.CommonName
	}

	return addCertificate(d, r, cert, put)
}

// certificateToken issues a join token: a token operation whose metadata the client
// turns into the token it prints.
func certificateToken(d *Daemon, req api.CertificatesPost) response.Response {
	if req.Certificate != "" {
		return response.BadRequest(errors.New("a token request takes no certificate"))
	}

	put, err := trust.Normalise(api.CertificatePut{Name: req.Name, Type: req.Type, Restricted: req.Restricted, Projects: req.Projects})
	if err != nil {
		return response.SmartError(err)
	}

	expiresAt, err := d.tokenExpiry()
	if err != nil {
		return response.InternalError(err)
	}

	req.Type, req.Projects = put.Type, put.Projects
	op, err := d.tokens.Issue(req, d.currentCert().Fingerprint, d.httpsAddresses(), expiresAt)
	if err != nil {
		return response.SmartError(err)
	}

	return response.OperationResponse(op)
}

// certificatesPostWithToken serves a caller that is not an administrator: its own
// certificate is trusted if the password is a live token. The token is checked last,
// so a request that would fail anyway does not use it up.
func certificatesPostWithToken(d *Daemon, r *http.Request, c trust.Caller, req api.CertificatesPost) response.Response {
	if req.Password == "" {
		d.audit.Refused(c, r, "adding a certificate without a token")
		return response.Forbidden(errors.New("not authorized: give a certificate add token as the password"))
	}

	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return response.BadRequest(errors.New("no client certificate on this connection"))
	}

	cert := r.TLS.PeerCertificates[0]
	if req.Certificate != "" {
		given, err := trust.ParseCertificate(req.Certificate)
		if err != nil {
			return response.SmartError(err)
		}

		if !given.Equal(cert) {
			return response.BadRequest(errors.New("a token adds the certificate of the connection it comes on, not another"))
		}
	}

	fp := listener.Fingerprint(cert.Raw)
	if _, known := d.trust.Lookup(fp); known {
		return response.Conflict(fmt.Errorf("certificate %s is already trusted", fp))
	}

	tokReq, err := d.tokens.Redeem(req.Password, d.currentCert().Fingerprint)
	if err != nil {
		d.audit.Refused(c, r, "bad certificate add token")
		return response.SmartError(err)
	}

	put := api.CertificatePut{Name: tokReq.Name, Type: tokReq.Type, Restricted: tokReq.Restricted, Projects: tokReq.Projects}
	if put.Name == "" {
		put.Name, _, _ = net.SplitHostPort(r.RemoteAddr)
	}

	return addCertificate(d, r, cert, put)
}

func addCertificate(d *Daemon, r *http.Request, cert *x509.Certificate, put api.CertificatePut) response.Response {
	fp, err := d.trust.Add(r.Context(), cert, put)
	if err != nil {
		return response.SmartError(err)
	}

	d.events.SendLifecycle("default", "certificate-created", "/1.0/certificates/"+fp, map[string]any{"name": put.Name})
	return response.SyncResponseLocation(true, nil, "/1.0/certificates/"+fp)
}

// GET /1.0/certificates/{fingerprint}: a fingerprint or a unique prefix of one.
func certificateGet(d *Daemon, r *http.Request) response.Response {
	cert, err := d.trust.Get(r.Context(), pathVar(r, "fingerprint"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseETag(true, cert, certificateETag(cert))
}

func certificateETag(c *api.Certificate) any {
	return []any{c.Name, c.Type, c.Restricted, c.Projects, c.Certificate}
}

// PUT /1.0/certificates/{fingerprint}
func certificatePut(d *Daemon, r *http.Request) response.Response {
	return certificateUpdate(d, r, false)
}

// PATCH /1.0/certificates/{fingerprint}: the fields given.
func certificatePatch(d *Daemon, r *http.Request) response.Response {
	return certificateUpdate(d, r, true)
}

func certificateUpdate(d *Daemon, r *http.Request, patch bool) response.Response {
	cur, err := d.trust.Get(r.Context(), pathVar(r, "fingerprint"))
	if err != nil {
		return response.SmartError(err)
	}

	err = etag.Check(r, certificateETag(cur))
	if err != nil {
		return response.SmartError(err)
	}

	put := api.CertificatePut{}
	if patch {
		put = api.CertificatePut{Name: cur.Name, Type: cur.Type, Restricted: cur.Restricted, Projects: cur.Projects}
	}

	var raw json.RawMessage
	err = decodeJSON(r, &raw)
	if err == nil {
		err = json.Unmarshal(raw, &put)
	}

	if err != nil {
		return response.SmartError(api.NewStatusError(http.StatusBadRequest, err))
	}

	// The same certificate again is no change of certificate.
	if put.Certificate != "" {
		given, err := trust.ParseCertificate(put.Certificate)
		if err != nil {
			return response.SmartError(err)
		}

		if listener.Fingerprint(given.Raw) == cur.Fingerprint {
			put.Certificate = ""
		}
	}

	fp, err := d.trust.Update(r.Context(), cur.Fingerprint, put)
	if err != nil {
		return response.SmartError(err)
	}

	d.events.SendLifecycle("default", "certificate-updated", "/1.0/certificates/"+fp, nil)
	return response.EmptySyncResponse
}

// DELETE /1.0/certificates/{fingerprint}: the client is cut off at once.
func certificateDelete(d *Daemon, r *http.Request) response.Response {
	gone, err := d.trust.Delete(r.Context(), pathVar(r, "fingerprint"))
	if err != nil {
		return response.SmartError(err)
	}

	d.events.SendLifecycle("default", "certificate-deleted", "/1.0/certificates/"+gone.Fingerprint, map[string]any{"name": gone.Name})
	return response.EmptySyncResponse
}
