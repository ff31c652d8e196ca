package main

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/berth-dev/berth/lxd/trust"
	"github.com/berth-dev/berth/shared/api"
)

// Who may use what (the callers themselves are lxd/trust's):
//   - the unix socket: everything;
//   - a trusted client certificate: everything but the internal endpoints;
//   - a metrics certificate: /1.0/metrics, and what anyone may use;
//   - anyone: GET / and GET /1.0 (reduced), public images, operation websockets with
//     their secret, POST /1.0/certificates with a token, and /1.0/metrics when
//     core.metrics_authentication is off; with an image push token (images_push.go),
//     POST /1.0/images of that image and the wait for its import. Everything else is 403.
//
// A restricted client certificate (restricted: true, projects: [...]) may use, besides
// what anyone may: GET /1.0 (without the server's config), the instance tree of its
// projects, reads of what its projects share with the default project (images and
// aliases, profiles, networks, storage pools), its projects (GET, filtered), the
// operations and events of its projects. The project of each request is checked in
// scopeProject (403 for another), lists are filtered to its projects. Nobody but an
// administrator lists other projects' operations (token secrets, websocket secrets),
// their events, certificates, the server's config or the internal endpoints.

type callerKey struct{}

// callerOf is the caller of a request the router has authenticated.
func callerOf(r *http.Request) trust.Caller {
	c, _ := r.Context().Value(callerKey{}).(trust.Caller)
	return c
}

func (d *Daemon) allowed(ep APIEndpoint, c trust.Caller, r *http.Request) bool {
	if c.Via == trust.ViaUnix {
		return true
	}

	switch {
	case strings.HasPrefix(ep.Path, "internal/"):
		return c.Member || slices.Contains(ep.Untrusted, r.Method)
	case ep.Path == "metrics":
		return c.Metrics() || !d.metricsAuthentication()
	case c.Admin():
		return true
	case c.Restricted() && restrictedMay(ep, r):
		return true
	}

	return slices.Contains(ep.Untrusted, r.Method) || (r.Method == http.MethodHead && slices.Contains(ep.Untrusted, http.MethodGet))
}

// restrictedMay is what a restricted certificate may call (its projects are checked by
// scopeProject and the handlers that list).
func restrictedMay(ep APIEndpoint, r *http.Request) bool {
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case ep.Path == collectionInstances || strings.HasPrefix(ep.Path, collectionInstances+"/"):
		return true
	case ep.Path == "" || ep.Path == "events" || ep.Path == "operations":
		return read
	case strings.HasPrefix(ep.Path, "operations/"):
		return true // each handler checks the operation's project
	case ep.Path == "projects" || ep.Path == "projects/{name}" || ep.Path == "projects/{name}/state":
		return read
	case isVolumePath(ep.Path):
		// Its projects' own custom volumes: a restricted project reaches no other
		// project's (scopeVolumes, db.VolumeOwner).
		return true
	}

	for _, kind := range sharedKinds {
		if ep.Path == kind || strings.HasPrefix(ep.Path, kind+"/") {
			return read
		}
	}

	return false
}

// refusal is the error a refused caller reads: one line that says why, starting with
// LXD's "not authorized" for scripts that look for it. Telling an untrusted client that
// it is untrusted gives nothing away: its GET /1.0 says "auth: untrusted" anyway.
func refusal(c trust.Caller) error {
	switch {
	case c.Via == trust.ViaTLS && c.Fingerprint == "":
		return errors.New("not authorized: this client sent no certificate")
	case c.Via == trust.ViaTLS && !c.Trusted:
		return errors.New("not authorized: the server doesn't trust this client's certificate")
	case c.Via == trust.ViaTLS && c.Cert.Type == api.CertificateTypeMetrics:
		return errors.New("not authorized: a metrics certificate may only read /1.0/metrics")
	}

	return errors.New("not authorized")
}

// trustedFor reports whether the caller of a routed request may see private objects
// (private images, the full GET /1.0).
func trustedFor(r *http.Request) bool {
	c := callerOf(r)
	return c.Admin() || c.Restricted()
}
