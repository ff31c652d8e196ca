package cluster

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/lxd/listener"
	"github.com/berth-dev/berth/shared/api"
)

// Replacing the cluster certificate (PUT /1.0/cluster/certificate, issue 16). Every
// member swaps in three steps driven by the member that received the request, so that
// members keep trusting each other throughout:
//
//  1. prepare: each member accepts the new certificate from peers (as a member's
//     client certificate, as the server certificate a member call pins, and on the
//     dqlite connections) beside the old one, and still presents the old one;
//  2. commit: each member writes the new pair to cluster.crt/.key and presents and
//     serves it from then on (no restart: the listeners read it at each handshake),
//     still accepting the old one from members that have not switched yet;
//  3. finish: each member stops accepting the old certificate.
//
// A member that never hears "finish" (its driver died) stops accepting the old
// certificate swapWindow after its commit by itself; an abandoned prepare is dropped
// after abandonedPrepare (and another swap may replace it after prepareTTL).

// Limits of a certificate swap.
const (
	swapWindow = 2 * time.Minute
	prepareTTL = time.Minute
	maxCertPEM = 64 << 10
)

// abandonedPrepare is how long a prepared certificate is accepted from peers when its
// swap neither commits nor aborts (the driving member died, or its abort was lost): long
// enough for a driver to reach every member (10 s a step), short enough that a pair the
// administrator was told changed nothing does not stay a member's certificate. A var
// for tests.
var abandonedPrepare = 5 * time.Minute

// certSwap is the state of a swap on this member (Service.swap, under swapMu).
type certSwap struct {
	pending    *listener.Cert // prepared, not committed
	pendingKey []byte         // its key, PEM
	preparedAt time.Time
	expire     *time.Timer    // drops pending after abandonedPrepare
	old        *listener.Cert // committed away from, still accepted until finish
	timer      *time.Timer    // finishes the swap at the latest swapWindow after commit
}

// ParseClusterCert checks a new cluster certificate and key as PUT
// /1.0/cluster/certificate receives them: one PEM certificate and one PEM key, the key
// the certificate's, an ECDSA (P-256 or stronger), Ed25519 or RSA (2048 bits or more)
// key, and a certificate valid now. Any failure is a 400 saying what is wrong.
func ParseClusterCert(certPEM, keyPEM []byte, now time.Time) (*listener.Cert, error) {
	bad := func(format string, args ...any) error {
		return api.StatusErrorf(http.StatusBadRequest, "cluster certificate: "+format, args...)
	}

	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil, bad("both the certificate and its key are required")
	}

	if len(certPEM) > maxCertPEM || len(keyPEM) > maxCertPEM {
		return nil, bad("the certificate and the key are at most %d bytes each", maxCertPEM)
	}

	block, rest := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, bad("the certificate must be one PEM CERTIFICATE block")
	}

	if strings.TrimSpace(string(rest)) != "" {
		return nil, bad("the certificate must be a single certificate, without a chain or anything after it")
	}

	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, bad("parsing the certificate: %v", err)
	}

	kb, _ := pem.Decode(keyPEM)
	if kb == nil || !strings.HasSuffix(kb.Type, "PRIVATE KEY") {
		return nil, bad("the key must be a PEM PRIVATE KEY block")
	}

	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, bad("the key does not match the certificate, or cannot be read: %v", err)
	}

	switch k := leaf.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve.Params().BitSize < 256 {
			return nil, bad("an ECDSA key of %d bits is too weak (P-256 or stronger)", k.Curve.Params().BitSize)
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, bad("an RSA key of %d bits is too weak (2048 or more)", k.N.BitLen())
		}
	case ed25519.PublicKey:
	default:
		return nil, bad("key type %T is not supported (ECDSA, Ed25519 or RSA)", leaf.PublicKey)
	}

	if now.After(leaf.NotAfter) {
		return nil, bad("it expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}

	if now.Add(time.Hour).Before(leaf.NotBefore) {
		return nil, bad("it is not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}

	c, err := listener.ParseCert(certPEM, keyPEM)
	if err != nil {
		return nil, bad("%v", err)
	}

	if c.Fingerprint != listener.Fingerprint(pair.Certificate[0]) {
		return nil, bad("the certificate could not be read back")
	}

	return c, nil
}

// OnCertChange sets what to do after the cluster certificate, or the set of
// certificates accepted from members, changed: f gets the fingerprints members may
// now present (MemberFingerprints), so the daemon updates its trust store and drops
// connections made with the old pair. f must not call back into the swap.
func (s *Service) OnCertChange(f func(memberFingerprints []string)) {
	s.swapMu.Lock()
	s.onCertChange = f
	s.swapMu.Unlock()
}

// MemberFingerprints are the fingerprints of the certificates a member may present:
// the cluster certificate's, and during a swap the other one's.
func (s *Service) MemberFingerprints() []string {
	s.swapMu.Lock()
	defer s.swapMu.Unlock()
	return s.memberFingerprintsLocked()
}

func (s *Service) memberFingerprintsLocked() []string {
	var out []string
	if c := s.Cert(); c != nil {
		out = append(out, c.Fingerprint)
	}

	for _, c := range []*listener.Cert{s.swap.pending, s.swap.old} {
		if c != nil && !slices.Contains(out, c.Fingerprint) {
			out = append(out, c.Fingerprint)
		}
	}

	return out
}

// certSetter is the dqlite node's side of a swap (gateway.SetCert).
type certSetter interface {
	SetCert(cert tls.Certificate, alsoAccept ...[]byte) error
}

// SetCert swaps the node's certificate (gateway.SetCert).
func (n gatewayNode) SetCert(cert tls.Certificate, alsoAccept ...[]byte) error {
	return n.g.SetCert(cert, alsoAccept...)
}

// applyLocked hands what is presented and accepted to the dqlite node, then tells the
// daemon. Under swapMu.
func (s *Service) applyLocked() error {
	cur := s.Cert()
	if cur == nil {
		return errors.New("not clustered")
	}

	s.mu.RLock()
	n := s.node
	s.mu.RUnlock()
	if cs, ok := n.(certSetter); ok {
		var also [][]byte
		for _, c := range []*listener.Cert{s.swap.pending, s.swap.old} {
			if c != nil {
				also = append(also, c.KeyPair.Certificate[0])
			}
		}

		err := cs.SetCert(cur.KeyPair, also...)
		if err != nil {
			return err
		}
	}

	if s.onCertChange != nil {
		s.onCertChange(s.memberFingerprintsLocked())
	}

	return nil
}

// PrepareCert is step 1 on this member: accept the new pair's certificate from peers
// beside the current one (the pair is checked with ParseClusterCert: 400 when
// unusable). Another swap prepared within prepareTTL is a 409.
func (s *Service) PrepareCert(certPEM, keyPEM []byte) error {
	if !s.Enabled() {
		return api.StatusErrorf(http.StatusBadRequest, "this server is not clustered")
	}

	c, err := ParseClusterCert(certPEM, keyPEM, time.Now())
	if err != nil {
		return err
	}

	s.swapMu.Lock()
	defer s.swapMu.Unlock()
	sw := &s.swap
	if sw.pending != nil && sw.pending.Fingerprint != c.Fingerprint && time.Since(sw.preparedAt) < prepareTTL {
		return api.StatusErrorf(http.StatusConflict, "another cluster certificate swap is under way")
	}

	sw.pending, sw.pendingKey, sw.preparedAt = c, slices.Clone(keyPEM), time.Now()
	sw.stopExpire()
	fp := c.Fingerprint
	sw.expire = time.AfterFunc(abandonedPrepare, func() {
		err := s.AbortCert(fp)
		if err != nil {
			s.log.Warn("dropping an abandoned cluster certificate swap", "err", err)
		}
	})

	return s.applyLocked()
}

// AbortCert drops a prepared certificate of fingerprint fp (the swap failed before
// any member committed it).
func (s *Service) AbortCert(fp string) error {
	s.swapMu.Lock()
	defer s.swapMu.Unlock()
	sw := &s.swap
	if sw.pending == nil || sw.pending.Fingerprint != fp {
		return nil
	}

	sw.pending, sw.pendingKey = nil, nil
	sw.stopExpire()
	return s.applyLocked()
}

// CommitCert is step 2 on this member: the prepared certificate of fingerprint fp
// becomes the cluster certificate (written to cluster.crt/.key, presented and served
// at once); the old one is still accepted until FinishCert, or swapWindow.
func (s *Service) CommitCert(fp string) error {
	s.swapMu.Lock()
	defer s.swapMu.Unlock()
	sw := &s.swap
	cur := s.Cert()
	if cur != nil && cur.Fingerprint == fp && sw.pending == nil {
		return nil // committed already
	}

	if sw.pending == nil || sw.pending.Fingerprint != fp {
		return api.StatusErrorf(http.StatusConflict, "no cluster certificate %s was prepared on this member", short(fp))
	}

	next := sw.pending
	err := listener.WriteCertFiles(s.dir, listener.ClusterCertFile, listener.ClusterKeyFile, []byte(next.PEM), sw.pendingKey)
	if err != nil {
		return fmt.Errorf("writing the new cluster certificate: %w", err)
	}

	s.mu.Lock()
	old := s.cert
	s.cert = next
	s.mu.Unlock()

	sw.pending, sw.pendingKey, sw.old = nil, nil, old
	sw.stopExpire()
	if sw.timer != nil {
		sw.timer.Stop()
	}

	sw.timer = time.AfterFunc(swapWindow, func() {
		err := s.FinishCert(fp)
		if err != nil {
			s.log.Warn("ending the cluster certificate swap", "err", err)
		}
	})

	return s.applyLocked()
}

// FinishCert is step 3 on this member: once the cluster certificate is fp, the old
// one is accepted no more.
func (s *Service) FinishCert(fp string) error {
	s.swapMu.Lock()
	defer s.swapMu.Unlock()
	sw := &s.swap
	if cur := s.Cert(); cur == nil || cur.Fingerprint != fp {
		return api.StatusErrorf(http.StatusConflict, "the cluster certificate here is not %s", short(fp))
	}

	if sw.timer != nil {
		sw.timer.Stop()
		sw.timer = nil
	}

	if sw.old == nil {
		return nil
	}

	sw.old = nil
	return s.applyLocked()
}

// stopExpire stops the expiry of a prepared certificate (it committed or aborted).
func (sw *certSwap) stopExpire() {
	if sw.expire != nil {
		sw.expire.Stop()
		sw.expire = nil
	}
}

func short(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}

	return fp
}
