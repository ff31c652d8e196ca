package client

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/shared/api"
)

// PublishImage makes an image from an instance or snapshot (lxc publish). The fingerprint
// is in the finished operation's metadata.
func (c *Client) PublishImage(ctx context.Context, req api.ImagesPost) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPost, "/1.0/images", req, "")
}
