// Package listener runs berthd's network listeners: the HTTPS API
// (core.https_address) and the metrics listener (core.metrics_address). It owns
// the server certificate (cert.go), the TLS configuration (tls.go) and the limits
// that keep slow or idle clients from holding connections (listener.go). Who may
// do what over a connection is lxd/trust's business.
package listener
