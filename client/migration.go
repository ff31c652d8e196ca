package client

import (
	"context"

	"github.com/berth-dev/berth/shared/ws"
)

// DialOperationWebsocket connects one websocket of the server's operation opID with its
// secret (a migration's control and fs streams). No trust is needed: the secret is the
// credential.
func (c *Client) DialOperationWebsocket(ctx context.Context, opID, secret string) (*ws.Conn, error) {
	return c.dialOperationWebsocket(ctx, opID, secret)
}
