package main

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/lxd/cluster"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/shared/api"
)

// Cluster join tokens as operations, which is how the 5.0 client lists and revokes
// them (`lxc cluster list-tokens` reads the running token operations' metadata;
// `revoke-token` deletes the operation). The token itself lives in the cluster
// database: the member that issued it also holds a token operation with the secret;
// every other member (and the issuer after a restart) shows a stand-in operation made
// from the database row, whose secret it cannot know.

// Operation metadata keys of a cluster join token (LXD's).
const (
	metaServerName  = "serverName"
	metaSecret      = "secret"
	metaFingerprint = "fingerprint"
	metaAddresses   = "addresses"
	metaExpiresAt   = "expiresAt"
	metaSecretHash  = "secretHash" // ours: matches the operation with its database row
)

// standInPrefix starts the id of a stand-in token operation; the rest is a prefix of
// the secret's hash.
const standInPrefix = "cluster-token-"

// tokenOperation holds a just-issued token as a running token operation. Cancelling it
// (revoke-token) deletes the token from the database; at expiry it ends and the expired
// row stays (listed by nobody, refused as expired, replaced by the name's next token).
func (d *Daemon) tokenOperation(tok api.ClusterMemberJoinToken) (*operations.Operation, error) {
	hash := cluster.HashOf(tok.Secret)
	md := map[string]any{
		metaServerName:  tok.ServerName,
		metaSecret:      tok.Secret,
		metaFingerprint: tok.Fingerprint,
		metaAddresses:   tok.Addresses,
		metaExpiresAt:   tok.ExpiresAt,
		metaSecretHash:  hash,
	}

	name := tok.ServerName
	var expired atomic.Bool
	op, err := d.ops.Create(api.OperationClassToken, "Cluster join token for "+name, nil, md, nil, nil,
		func(*operations.Operation) error {
			if expired.Load() {
				return nil // the row stays, so a late joiner is told the token expired
			}

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := d.cluster.RevokeToken(ctx, name, hash)
			if err != nil {
				d.log.Debug("join token not revoked", "name", name, "err", err)
			}

			return nil
		})
	if err != nil {
		return nil, err
	}

	err = op.Start()
	if err != nil {
		return nil, err
	}

	exp, err := time.Parse(time.RFC3339Nano, tok.ExpiresAt)
	if err == nil {
		timer := time.AfterFunc(time.Until(exp), func() {
			expired.Store(true)
			_ = op.Cancel()
		})
		go func() {
			<-op.Done()
			timer.Stop()
		}()
	}

	return op, nil
}

// isClusterTokenOp reports whether op is a running cluster join token of this member.
func isClusterTokenOp(op *operations.Operation) (map[string]any, bool) {
	if op.Class() != api.OperationClassToken || op.Status() != api.Running {
		return nil, false
	}

	md := op.Metadata()
	_, ok := md[metaServerName].(string)
	return md, ok
}

// endTokenOps cancels this member's token operations whose metadata match.
func (d *Daemon) endTokenOps(match func(map[string]any) bool) {
	for _, op := range d.ops.List() {
		md, ok := isClusterTokenOp(op)
		if ok && match(md) {
			_ = op.Cancel()
		}
	}
}

// clusterTokenOps reconciles this member's token operations with the database (a token
// used or revoked through another member ends here too) and returns stand-ins for the
// database's tokens this member holds no operation for.
func (d *Daemon) clusterTokenOps(ctx context.Context) []api.Operation {
	if d.cluster == nil || !d.cluster.Enabled() {
		return nil
	}

	rows, err := d.cluster.Tokens(ctx)
	if err != nil {
		d.log.Warn("listing join tokens", "err", err)
		return nil
	}

	live := map[string]bool{}
	for _, r := range rows {
		live[r.SecretSHA256] = true
	}

	held := map[string]bool{}
	d.endTokenOps(func(md map[string]any) bool {
		h, _ := md[metaSecretHash].(string)
		held[h] = live[h]
		return !live[h]
	})

	fp := d.cluster.Cert().Fingerprint
	var out []api.Operation
	for _, r := range rows {
		if held[r.SecretSHA256] {
			continue
		}

		md := map[string]any{
			metaServerName: r.Name, metaSecret: "", metaFingerprint: fp, metaAddresses: []string{}, metaExpiresAt: "",
		}

		if !r.ExpiresAt.IsZero() {
			md[metaExpiresAt] = r.ExpiresAt.UTC().Format(time.RFC3339Nano)
		}

		out = append(out, api.Operation{
			ID: standInPrefix + r.SecretSHA256[:32], Class: api.OperationClassToken, Description: "Cluster join token for " + r.Name,
			CreatedAt: r.CreatedAt, UpdatedAt: r.CreatedAt, Status: api.Running.String(), StatusCode: api.Running,
			Resources: map[string][]string{}, Metadata: md, MayCancel: true, Location: d.cluster.Self().Name,
		})
	}

	return out
}

// standInToken finds the database token a stand-in operation id names.
func (d *Daemon) standInToken(ctx context.Context, id string) (api.Operation, bool) {
	if !strings.HasPrefix(id, standInPrefix) {
		return api.Operation{}, false
	}

	for _, op := range d.clusterTokenOps(ctx) {
		if op.ID == id {
			return op, true
		}
	}

	return api.Operation{}, false
}

// revokeStandIn deletes the token a stand-in operation stands for.
func (d *Daemon) revokeStandIn(ctx context.Context, op api.Operation) error {
	name, _ := op.Metadata[metaServerName].(string)
	prefix := strings.TrimPrefix(op.ID, standInPrefix)
	rows, err := d.cluster.Tokens(ctx)
	if err != nil {
		return err
	}

	for _, r := range rows {
		if r.Name == name && strings.HasPrefix(r.SecretSHA256, prefix) {
			return d.cluster.RevokeToken(ctx, name, r.SecretSHA256)
		}
	}

	return api.StatusErrorf(http.StatusNotFound, "operation %q not found", op.ID)
}
