package client

import (
	"net"
	"net/http"
	"time"
)

// NewHTTPSClient returns a plain HTTPS client with the same TLS policy as ConnectHTTPS
// (the pinned server certificate, else the system roots) that follows no redirect: for
// servers that are not LXD API servers, such as simplestreams image servers.
func NewHTTPSClient(args HTTPSArgs) (*http.Client, error) {
	conf, err := tlsConfig(args)
	if err != nil {
		return nil, err
	}

	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       conf,
		TLSHandshakeTimeout:   handshakeTimeout,
		ResponseHeaderTimeout: responseHeaderTimeout,
		IdleConnTimeout:       30 * time.Second,
	}

	return &http.Client{Transport: transport, CheckRedirect: refuseRedirect}, nil
}
