package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/lxd/cluster"
	"github.com/berth-dev/berth/lxd/listener"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// PUT /1.0/cluster/certificate (issue 16; `lxc cluster update-certificate`): replace the
// cluster certificate and key on every member, without a restart. The member that
// receives it checks the pair (lxd/cluster.ParseClusterCert: a garbage or weak pair is
// a 400 and nothing changes), refuses while any member is offline (503 naming it, as
// LXD's notifier refuses), then drives the swap over member-to-member TLS
// (PUT /internal/cluster/certificate): prepare on every member (each accepts both
// certificates from peers), commit on every member (each writes cluster.crt/.key and
// serves the new one), finish on every member (the old one is accepted no more). See
// lxd/cluster/certificate.go.
//
// Only an administrator may call it: the unix socket or an unrestricted trusted client
// certificate (restricted certificates reach no /1.0/cluster path, auth.go); the
// internal steps answer members only.

func init() {
	endpoints = append(endpoints, APIEndpoint{Path: "cluster/certificate", Put: clusterCertificatePut})
	internalEndpoints = append(internalEndpoints, APIEndpoint{Path: "internal/cluster/certificate", Put: internalClusterCertificatePut})
}

// certStepPath is a member's endpoint for one step of a swap.
const certStepPath = "/internal/cluster/certificate"

// certStep is one step of a swap as a member receives it.
type certStep struct {
	Step        string `json:"step"` // prepare, abort, commit, finish
	Certificate string `json:"certificate,omitempty"`
	Key         string `json:"key,omitempty"`
	Fingerprint string `json:"fingerprint"`
}

// certStepTimeout bounds one step on one member.
const certStepTimeout = 10 * time.Second

// PUT /1.0/cluster/certificate
func clusterCertificatePut(d *Daemon, r *http.Request) response.Response {
	if !d.clustered() || d.cluster == nil {
		return response.SmartError(errNotClustered)
	}

	req := api.ClusterCertificatePut{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	next, err := cluster.ParseClusterCert([]byte(req.ClusterCertificate), []byte(req.ClusterCertificateKey), time.Now())
	if err != nil {
		return response.SmartError(err)
	}

	if !certSwapMu.TryLock() {
		return response.SmartError(api.StatusErrorf(http.StatusConflict, "a cluster certificate swap is under way"))
	}

	defer certSwapMu.Unlock()
	if cur := d.cluster.Cert(); cur != nil && cur.Fingerprint == next.Fingerprint {
		return response.EmptySyncResponse // already the cluster certificate
	}

	ctx := r.Context()
	ms, err := d.members(ctx)
	if err != nil {
		return response.SmartError(err)
	}

	self := d.cluster.Self()
	var others []cluster.Member
	var offline []string
	for _, m := range ms {
		switch {
		case m.ID == self.ID:
		case !m.Online:
			offline = append(offline, m.Name)
		default:
			others = append(others, m)
		}
	}

	if len(offline) > 0 {
		return response.SmartError(api.StatusErrorf(http.StatusServiceUnavailable,
			"cannot replace the cluster certificate while members are offline: %s", strings.Join(offline, ", ")))
	}

	fp := next.Fingerprint
	prepare := certStep{Step: "prepare", Certificate: req.ClusterCertificate, Key: req.ClusterCertificateKey, Fingerprint: fp}
	var prepared []cluster.Member
	abort := func() {
		for _, m := range prepared {
			err := d.memberSend(context.Background(), m.Address, http.MethodPut, certStepPath, certStep{Step: "abort", Fingerprint: fp}, certStepTimeout)
			if err != nil {
				d.log.Warn("aborting the cluster certificate swap on a member", "member", m.Name, "err", err)
			}
		}

		_ = d.cluster.AbortCert(fp)
	}

	err = d.cluster.PrepareCert([]byte(req.ClusterCertificate), []byte(req.ClusterCertificateKey))
	if err != nil {
		return response.SmartError(err)
	}

	for _, m := range others {
		err = d.memberSend(ctx, m.Address, http.MethodPut, certStepPath, prepare, certStepTimeout)
		if err != nil {
			abort()
			return response.SmartError(api.StatusErrorf(http.StatusServiceUnavailable,
				"cluster member %q refused the new cluster certificate (nothing changed): %v", m.Name, err))
		}

		prepared = append(prepared, m)
	}

	// From here every member accepts both certificates: the order of the commits does
	// not matter, and a member that fails to commit keeps working on the old one.
	var failed []string
	for _, m := range others {
		err = d.memberSend(ctx, m.Address, http.MethodPut, certStepPath, certStep{Step: "commit", Fingerprint: fp}, certStepTimeout)
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", m.Name, err))
		}
	}

	err = d.cluster.CommitCert(fp)
	if err != nil {
		failed = append(failed, fmt.Sprintf("%s: %v", self.Name, err))
	}

	if len(failed) > 0 {
		return response.SmartError(fmt.Errorf("the new cluster certificate was not taken by every member (%s): the old one stays accepted between members for %v; retry",
			strings.Join(failed, "; "), 2*time.Minute))
	}

	for _, m := range others {
		err = d.memberSend(ctx, m.Address, http.MethodPut, certStepPath, certStep{Step: "finish", Fingerprint: fp}, certStepTimeout)
		if err != nil {
			d.log.Warn("ending the cluster certificate swap on a member (it ends by itself)", "member", m.Name, "err", err)
		}
	}

	err = d.cluster.FinishCert(fp)
	if err != nil {
		return response.SmartError(err)
	}

	d.log.Info("cluster certificate replaced", "fingerprint", fp, "by", callerOf(r).String())
	d.events.SendLifecycle("default", "cluster-certificate-updated", "/1.0/cluster/certificate", nil)
	return response.EmptySyncResponse
}

// PUT /internal/cluster/certificate: one step of a swap, from the member driving it.
func internalClusterCertificatePut(d *Daemon, r *http.Request) response.Response {
	if !d.clustered() || d.cluster == nil {
		return response.SmartError(errNotClustered)
	}

	req := certStep{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	switch req.Step {
	case "prepare":
		err = d.cluster.PrepareCert([]byte(req.Certificate), []byte(req.Key))
	case "abort":
		err = d.cluster.AbortCert(req.Fingerprint)
	case "commit":
		err = d.cluster.CommitCert(req.Fingerprint)
	case "finish":
		err = d.cluster.FinishCert(req.Fingerprint)
	default:
		err = api.StatusErrorf(http.StatusBadRequest, "unknown certificate step %q", req.Step)
	}

	if err != nil {
		return response.SmartError(err)
	}

	return response.EmptySyncResponse
}

// clusterCertChanged follows a swap step (cluster.Service.OnCertChange): the trust
// store takes the certificates members may now present, and the idle connections to
// members go, so that new ones present the new certificate.
func (d *Daemon) clusterCertChanged(memberFingerprints []string) {
	if d.trust != nil {
		d.trust.SetClusterFingerprints(memberFingerprints)
	}

	if d.forward != nil {
		d.forward.fwd.Close()
	}
}

// currentCert is the certificate the HTTPS API serves: the cluster certificate as it
// is now on a member (it changes with PUT /1.0/cluster/certificate), else the server's.
func (d *Daemon) currentCert() *listener.Cert {
	if c := d.cluster.Cert(); c != nil {
		return c
	}

	return d.cert
}

// certSwapMu lets one swap run at a time through this daemon.
var certSwapMu sync.Mutex
