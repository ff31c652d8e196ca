// Package api holds the REST wire types shared by berthd and its clients.
// The shapes follow LXD's 1.0 API so that LXD's own client can drive berthd.
// It depends on the standard library only.
package api
