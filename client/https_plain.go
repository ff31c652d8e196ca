package client

import (
	"crypto/tls"
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

	return &http.Client{Transport: httpsTransport(dialer, conf), CheckRedirect: refuseRedirect}, nil
}

// httpsTransport is the transport of every HTTPS client of this package.
func httpsTransport(dialer *net.Dialer, conf *tls.Config) *http.Transport {
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         dialer.DialContext,
		TLSClientConfig:     conf,
		TLSHandshakeTimeout: handshakeTimeout,
		// A server that completed the handshake and then went silent must not hang
		// the command; long operations wait on /wait or the events websocket instead.
		ResponseHeaderTimeout: responseHeaderTimeout,
		IdleConnTimeout:       30 * time.Second,
		// A TLS handshake costs more than a unix connect: reuse connections.
		MaxIdleConnsPerHost: 4,
	}
}
