package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/berth-dev/berth/lxd/listener"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/lxd/trust"
	"github.com/berth-dev/berth/shared/expiry"
)

// initRemote loads what the HTTPS API needs: the server certificate (generated on
// first start, shown in GET /1.0 even while no listener runs), the trust store, the
// join tokens and the audit log. The listeners start in startListeners.
func (d *Daemon) initRemote(ctx context.Context) error {
	var err error
	d.cert, err = listener.LoadOrCreateCert(d.dir)
	if err != nil {
		return fmt.Errorf("loading server certificate: %w", err)
	}

	if c := d.cluster.Cert(); c != nil {
		d.cert = c // every member serves the cluster certificate
	}

	d.trust, err = trust.NewStore(ctx, d.db, d.log)
	if err != nil {
		return err
	}

	// A removed certificate's exec and console sessions end with it, also those whose
	// websockets were connected without a certificate (with their secrets only).
	d.trust.OnRevoke(func(fp string) {
		n := d.ops.AbortOwnedBy(fp)
		if n > 0 {
			d.log.Info("certificate removed: its operations aborted", "fingerprint", fp, "operations", n)
		}
	})

	if c := d.cluster.Cert(); c != nil {
		d.trust.SetClusterFingerprint(c.Fingerprint)
		d.cluster.OnCertChange(d.clusterCertChanged) // cluster_certificate.go
	}

	d.tokens = trust.NewTokens(d.ops)
	d.audit = trust.NewAudit(d.log)

	tlsConfig := listener.ServerTLSConfig(d.cert)
	// Read at each handshake: a member's cluster certificate can be replaced while it
	// runs (PUT /1.0/cluster/certificate).
	tlsConfig.Certificates = nil
	tlsConfig.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return &d.currentCert().KeyPair, nil
	}
	d.https = listener.New(listener.Config{
		Name: "https", Handler: d.apiHandler(), TLS: tlsConfig, Log: d.log, ConnContext: trust.TLSConnContext,
	})
	d.metricsListener = listener.New(listener.Config{
		Name: "metrics", Handler: d.metricsRouter(), TLS: tlsConfig, Log: d.log, ConnContext: trust.TLSConnContext,
	})

	return d.loadServerConfig(ctx)
}

// startListeners starts the listeners the configuration asks for. A listener that
// cannot start (its address is gone or taken) is logged: the unix socket still serves,
// and setting the address again retries.
func (d *Daemon) startListeners() {
	cfg := d.serverConfig()
	if d.cluster.Enabled() && cfg[keyHTTPSAddress] == "" {
		// A member serves its API where the cluster knows it (local.db) unless its own
		// core.https_address says otherwise.
		cfg[keyHTTPSAddress] = d.cluster.Self().Address
	}

	for key, ep := range map[string]*listener.Endpoint{keyHTTPSAddress: d.https, keyMetricsAddress: d.metricsListener} {
		if cfg[key] == "" {
			continue
		}

		err := ep.Set(cfg[key])
		if err != nil {
			d.log.Error("network listener not started", "key", key, "err", err)
		}
	}
}

func (d *Daemon) stopListeners() {
	if d.https != nil {
		d.https.Close()
		d.metricsListener.Close()
	}
}

// unixServer is the unix socket's HTTP server: the socket's peer is the administrator,
// recorded with its credentials for the audit log.
func (d *Daemon) unixServer() *http.Server {
	return &http.Server{Handler: d.apiHandler(), ReadHeaderTimeout: 10 * time.Second, ConnContext: trust.UnixConnContext}
}

// apiHandler is the API's router, built once and shared by the unix socket, HTTPS and
// metrics listeners: it holds no listener's state (a caller's trust comes from its
// connection, trust.UnixConnContext and TLSConnContext), and gorilla/mux compiles a
// regular expression per route, ~6 ms of every daemon start per build on the 2-core VM.
func (d *Daemon) apiHandler() http.Handler {
	d.apiOnce.Do(func() { d.api = d.router() })
	return d.api
}

// metricsRouter serves /1.0/metrics alone: the metrics listener is for scrapers.
func (d *Daemon) metricsRouter() http.Handler {
	api := d.apiHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/1.0/metrics" {
			// Whoever it is, the caller is refused: it gets an untrusted caller's limits.
			aw, r := limitRequest(w, r, trust.Caller{Via: trust.ViaTLS})
			discardBody(r)
			d.render(aw, r, response.NotFound(fmt.Errorf("the metrics listener serves /1.0/metrics only")))
			return
		}

		api.ServeHTTP(w, r)
	})
}

// httpsAddresses is where clients reach the HTTPS API (GET /1.0, join tokens).
func (d *Daemon) httpsAddresses() []string {
	if d.https == nil {
		return []string{}
	}

	addr := d.https.Addr()
	if addr == nil {
		return []string{}
	}

	return listener.Addresses(addr)
}

// tokenExpiry is when a token issued now expires under core.remote_token_expiry.
func (d *Daemon) tokenExpiry() (time.Time, error) {
	return expiry.After(time.Now(), d.serverConfig()[keyTokenExpiry])
}

// loadServerConfig reads the server configuration into memory.
func (d *Daemon) loadServerConfig(ctx context.Context) error {
	cfg, err := d.readServerConfig(ctx)
	if err != nil {
		return err
	}

	d.configMu.Lock()
	d.config = cfg
	d.configMu.Unlock()
	return nil
}

// serverConfig is a copy of the server configuration.
func (d *Daemon) serverConfig() map[string]string {
	d.configMu.RLock()
	defer d.configMu.RUnlock()
	out := make(map[string]string, len(d.config))
	for k, v := range d.config {
		out[k] = v
	}

	return out
}

// metricsAuthentication is core.metrics_authentication: on unless set false.
func (d *Daemon) metricsAuthentication() bool {
	v := strings.ToLower(d.serverConfig()[keyMetricsAuth])
	return v != "false" && v != "0" && v != "no" && v != "off"
}
