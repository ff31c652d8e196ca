// Package client is the Go client for berthd's REST API (LXD API 1.0 shapes).
//
// It speaks HTTP/1.1 over berthd's unix socket, one request per connection,
// decodes the sync/async/error envelope and waits for operations through the
// /1.0/events websocket the way LXD's own client does.
package client
