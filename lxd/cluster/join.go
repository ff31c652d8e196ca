package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/listener"
	"github.com/berth-dev/berth/shared/api"
)

// AcceptPath is the member's endpoint a joiner calls with its token's secret.
const AcceptPath = "/internal/cluster/accept"

// AcceptRequest is what a joiner sends to a member.
type AcceptRequest struct {
	Name          string `json:"name"`
	Address       string `json:"address"`
	Secret        string `json:"secret"`
	SchemaVersion int    `json:"schema"`
	APIExtensions int    `json:"api_extensions"`
	Arch          string `json:"arch"`
}

// AcceptResponse is the member's answer: the new member's id, the cluster certificate
// and key, and the dqlite addresses of the members.
type AcceptResponse struct {
	MemberID    int64    `json:"member_id"`
	Certificate string   `json:"certificate"`
	Key         string   `json:"key"`
	RaftPeers   []string `json:"raft_peers"`
}

// JoinRequest makes this fresh host a member of the cluster of Token.
type JoinRequest struct {
	Name    string
	Address string // this host's cluster.https_address
	Token   api.ClusterMemberJoinToken
	Levels  Levels
	FileDB  *db.DB

	// Fresh refuses a host that holds anything the cluster's inventory would lose
	// (instances, custom volumes).
	Fresh func(ctx context.Context) error
}

// Limits of the accept exchange (variables for tests).
var (
	acceptTimeout     = 30 * time.Second
	acceptDialTimeout = 5 * time.Second
)

const maxAcceptReply = 256 << 10

// Join asks a member of the token's cluster to accept this host, then joins the
// cluster's dqlite and records the switch in local.db. As for Enable, the caller
// re-execs the daemon afterwards; on an error before local.db is written the host is
// left as it was.
func (s *Service) Join(ctx context.Context, req JoinRequest) error {
	err := ValidMemberName(req.Name)
	if err != nil {
		return api.StatusErrorf(http.StatusBadRequest, "%v", err)
	}

	if req.Address == "" {
		return api.StatusErrorf(http.StatusBadRequest, "joining needs this server's address (server_address, or core.https_address)")
	}

	if req.Token.ServerName != "" && req.Token.ServerName != req.Name {
		return api.StatusErrorf(http.StatusBadRequest, "the join token is for a member named %q, not %q", req.Token.ServerName, req.Name)
	}

	c, err := s.beginChange("join")
	if err != nil {
		return err
	}

	defer c.undo()

	if req.Fresh != nil {
		err = req.Fresh(ctx)
		if err != nil {
			return err
		}
	}

	own, err := listener.LoadCertFiles(s.dir, listener.CertFile, listener.KeyFile)
	if err != nil {
		return err
	}

	reply, err := askAccept(ctx, req, own)
	if err != nil {
		return err
	}

	cert, err := listener.ParseCert([]byte(reply.Certificate), []byte(reply.Key))
	if err != nil {
		return fmt.Errorf("the member sent an unusable cluster certificate: %w", err)
	}

	if cert.Fingerprint != req.Token.Fingerprint {
		return errors.New("the member sent a cluster certificate other than the token's")
	}

	err = removeHalfMade(s.dir)
	if err != nil {
		return err
	}

	err = listener.WriteCertFiles(s.dir, listener.ClusterCertFile, listener.ClusterKeyFile, []byte(reply.Certificate), []byte(reply.Key))
	if err != nil {
		return fmt.Errorf("writing the cluster certificate: %w", err)
	}

	c.node, err = joinNode(ctx, s.dir, req.Address, cert, reply.RaftPeers)
	if err != nil {
		return fmt.Errorf("joining the cluster database: %w", err)
	}

	err = c.holdWriter(req.FileDB)
	if err != nil {
		return err
	}

	return c.finish(ctx, req.FileDB, local{MemberID: reply.MemberID, Name: req.Name, Address: req.Address})
}

// askAccept posts the accept request to the token's addresses in turn, pinning the
// cluster certificate. A member's refusal (4xx) is final; an unreachable member makes
// it try the next.
func askAccept(ctx context.Context, req JoinRequest, own *listener.Cert) (AcceptResponse, error) {
	body, _ := json.Marshal(AcceptRequest{
		Name: req.Name, Address: req.Address, Secret: req.Token.Secret,
		SchemaVersion: req.Levels.SchemaVersion, APIExtensions: req.Levels.APIExtensions, Arch: req.Levels.Arch,
	})

	// acceptTimeout bounds the whole exchange, over all the token's addresses (up to
	// 64): not each of them. A blackholed address costs acceptDialTimeout.
	ctx, cancel := context.WithTimeout(ctx, acceptTimeout)
	defer cancel()
	dialer := &net.Dialer{Timeout: acceptDialTimeout}
	client := &http.Client{
		Transport: &http.Transport{
			DialContext: dialer.DialContext, TLSHandshakeTimeout: acceptDialTimeout,
			TLSClientConfig: pinnedTLS(req.Token.Fingerprint, &own.KeyPair), DisableKeepAlives: true,
		},
	}

	var errs []error
	for _, addr := range req.Token.Addresses {
		err := validTokenAddress(addr)
		if err != nil {
			return AcceptResponse{}, api.StatusErrorf(http.StatusBadRequest, "%v", err)
		}

		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("gave up after %v: %w", acceptTimeout, ctx.Err()))
			break
		}

		r, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+AcceptPath, bytes.NewReader(body))
		if err != nil {
			errs = append(errs, err)
			continue
		}

		r.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}

		data, err := io.ReadAll(io.LimitReader(resp.Body, maxAcceptReply))
		_ = resp.Body.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}

		var envelope struct {
			Error    string          `json:"error"`
			Metadata json.RawMessage `json:"metadata"`
		}

		_ = json.Unmarshal(data, &envelope)
		if resp.StatusCode != http.StatusOK {
			if resp.StatusCode >= 400 && resp.StatusCode < 500 {
				return AcceptResponse{}, api.StatusErrorf(resp.StatusCode, "member %s refused the join: %s", addr, envelope.Error)
			}

			errs = append(errs, fmt.Errorf("%s: %s: %s", addr, resp.Status, envelope.Error))
			continue
		}

		var out AcceptResponse
		err = json.Unmarshal(envelope.Metadata, &out)
		if err != nil || out.Certificate == "" || out.Key == "" || out.MemberID <= 0 {
			errs = append(errs, fmt.Errorf("%s: malformed accept answer", addr))
			continue
		}

		return out, nil
	}

	return AcceptResponse{}, api.StatusErrorf(http.StatusServiceUnavailable, "no member of the token's cluster accepted the join: %v", errors.Join(errs...))
}

// Accept is a member's side of a join: the token's secret is checked in constant time
// and consumed, and the new member's row inserted, in one transaction; the answer
// carries the cluster certificate and key.
func (s *Service) Accept(ctx context.Context, req AcceptRequest, ours Levels) (AcceptResponse, error) {
	var out AcceptResponse
	if !s.Enabled() {
		return out, api.StatusErrorf(http.StatusBadRequest, "this server is not clustered")
	}

	err := ValidMemberName(req.Name)
	if err != nil {
		return out, api.StatusErrorf(http.StatusBadRequest, "%v", err)
	}

	_, err = listener.Canonical(req.Address, listener.DefaultPort)
	if err != nil || req.Address == "" {
		return out, api.StatusErrorf(http.StatusBadRequest, "invalid member address %q", req.Address)
	}

	if len(req.Secret) > maxTokenLen {
		return out, errTokenRefused
	}

	var peers []string
	acceptedAt := time.Now()
	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		err := consumeToken(ctx, tx, req.Name, req.Secret, time.Now())
		if err != nil {
			return err
		}

		// Only a joiner with the secret learns the cluster's levels; the refusal rolls
		// the token's use back.
		if req.SchemaVersion != ours.SchemaVersion || req.APIExtensions != ours.APIExtensions {
			return api.StatusErrorf(http.StatusPreconditionFailed,
				"the joiner's schema %d / API extensions %d differ from the cluster's %d / %d: run the same Berth version",
				req.SchemaVersion, req.APIExtensions, ours.SchemaVersion, ours.APIExtensions)
		}

		members, err := tx.ClusterMembers(ctx)
		if err != nil {
			return err
		}

		peers = peers[:0]
		for _, m := range members {
			if m.Address == "" {
				continue
			}

			ra, err := raftAddress(m.Address)
			if err == nil {
				peers = append(peers, ra)
			}
		}

		out.MemberID, err = tx.ClusterMemberAdd(ctx, db.MemberRow{
			Name: req.Name, Address: req.Address, SchemaVersion: req.SchemaVersion,
			APIExtensions: req.APIExtensions, Arch: req.Arch, Heartbeat: acceptedAt,
		})
		return err
	})
	if err != nil {
		return AcceptResponse{}, err
	}

	// A joiner that fails after this (its dqlite join, its restart) never heartbeats:
	// its row goes then.
	s.sweepUnjoined(req.Name, acceptedAt)

	certPEM, keyPEM, err := listener.ReadCertFiles(s.dir, listener.ClusterCertFile, listener.ClusterKeyFile)
	if err != nil {
		return AcceptResponse{}, err
	}

	out.Certificate, out.Key, out.RaftPeers = string(certPEM), string(keyPEM), peers
	return out, nil
}

// apiAddressOf is the API address of a member whose dqlite listens at raftAddr (port+1).
func apiAddressOf(raftAddr string) string {
	host, port, err := net.SplitHostPort(raftAddr)
	if err != nil {
		return raftAddr
	}

	p, err := strconv.Atoi(port)
	if err != nil {
		return raftAddr
	}

	return net.JoinHostPort(host, strconv.Itoa(p-1))
}
