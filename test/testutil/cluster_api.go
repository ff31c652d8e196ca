package testutil

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// UnixRequest sends one request to the daemon's unix socket with a deadline and decodes
// the LXD envelope whatever the status. Every call has a deadline: a cluster that lost
// its quorum must not hang a test or a benchmark.
func UnixRequest(socket, method, path string, body any, timeout time.Duration) (int, api.Response, error) {
	hc := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}}}

	var rdr io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, api.Response{}, err
		}

		rdr = strings.NewReader(string(data))
	}

	req, err := http.NewRequest(method, "http://unix.socket"+path, rdr)
	if err != nil {
		return 0, api.Response{}, err
	}

	resp, err := hc.Do(req)
	if err != nil {
		return 0, api.Response{}, err
	}

	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, api.Response{}, err
	}

	var env api.Response
	err = json.Unmarshal(data, &env)
	if err != nil {
		return resp.StatusCode, env, fmt.Errorf("%s %s: not an envelope: %q", method, path, data)
	}

	return resp.StatusCode, env, nil
}

// JoinRequest is a PUT /1.0/cluster body that joins a fresh server with token (LXD
// 5.0.2's `lxd init --preseed` sends the token as cluster_password instead, which berthd
// takes too: TestPreseedClusterJoin): the server's name from the token, its own address, the cluster's
// address (the token's first) and certificate (certPEM, which the caller checked against
// the token's fingerprint), and the token itself.
func JoinRequest(token, serverAddr, certPEM string) (map[string]any, error) {
	raw, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		return nil, fmt.Errorf("token is not base64: %w", err)
	}

	var tok api.ClusterMemberJoinToken
	err = json.Unmarshal(raw, &tok)
	if err != nil {
		return nil, fmt.Errorf("token %q: %w", raw, err)
	}

	if len(tok.Addresses) == 0 {
		return nil, fmt.Errorf("token %q has no addresses", raw)
	}

	return map[string]any{
		"server_name":         tok.ServerName,
		"enabled":             true,
		"server_address":      serverAddr,
		"cluster_address":     tok.Addresses[0],
		"cluster_certificate": certPEM,
		"cluster_token":       token,
		"member_config":       []any{},
	}, nil
}

// Join has the daemon at socket redeem a join token (JoinRequest) and returns the
// refusal, or nil once the request and its operation (if any) succeeded. The joiner
// re-executes itself once accepted, so a wait on the operation cut short by that counts
// as no answer: the caller must then wait for the daemon to serve as a member.
func Join(socket, token, serverAddr, certPEM string) error {
	body, err := JoinRequest(token, serverAddr, certPEM)
	if err != nil {
		return err
	}

	code, env, err := UnixRequest(socket, "PUT", "/1.0/cluster", body, time.Minute)
	if err != nil {
		return err
	}

	if code >= 400 || env.Type == "error" {
		return fmt.Errorf("%d %s", code, env.Error)
	}

	if env.Type != "async" || env.Operation == "" {
		return nil
	}

	code, env, err = UnixRequest(socket, "GET", env.Operation+"/wait?timeout=60", nil, 70*time.Second)
	if err != nil {
		return nil
	}

	if code >= 400 {
		if code == http.StatusNotFound {
			return nil // the re-executed daemon does not know the operation
		}

		return fmt.Errorf("join operation: %d %s", code, env.Error)
	}

	op, _ := env.MetadataAsOperation()
	if op != nil && op.StatusCode == api.Failure {
		return fmt.Errorf("join operation failed: %s", op.Err)
	}

	return nil
}

// ClusterMembers is GET /1.0/cluster/members?recursion=1 through the daemon at socket.
func ClusterMembers(socket string) ([]api.ClusterMember, error) {
	code, env, err := UnixRequest(socket, "GET", "/1.0/cluster/members?recursion=1", nil, 3*time.Second)
	if err != nil {
		return nil, err
	}

	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /1.0/cluster/members: %d %s", code, env.Error)
	}

	var ms []api.ClusterMember
	err = json.Unmarshal(env.Metadata, &ms)
	return ms, err
}

// ClusterLeader is the name of the member with the database-leader role.
func ClusterLeader(socket string) (string, error) {
	ms, err := ClusterMembers(socket)
	if err != nil {
		return "", err
	}

	for _, m := range ms {
		for _, r := range m.Roles {
			if r == "database-leader" {
				return m.ServerName, nil
			}
		}
	}

	return "", fmt.Errorf("no member has the database-leader role")
}

// OnlineVoters counts the members with a database role that are online.
func OnlineVoters(socket string) (int, error) {
	ms, err := ClusterMembers(socket)
	if err != nil {
		return 0, err
	}

	n := 0
	for _, m := range ms {
		if IsVoter(m) && strings.EqualFold(m.Status, "online") {
			n++
		}
	}

	return n, nil
}

// IsVoter reports whether a member votes in the database: LXD names the role "database"
// (and sets Database), the leader has "database-leader".
func IsVoter(m api.ClusterMember) bool {
	for _, r := range m.Roles {
		if r == "database" || r == "database-voter" || r == "database-leader" {
			return true
		}
	}

	return m.Database
}
