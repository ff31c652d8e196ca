// Package trust decides who a caller of the API is and what it may do: the unix
// socket's peer is the administrator (the socket is root's, mode 0660), an HTTPS
// client is trusted when the SHA-256 of its certificate is in the trust store
// (store.go: the certificates table, cached in memory), join tokens let a client add
// its own certificate once (tokens.go), and removing a certificate closes every
// connection of that client at once (conns.go). The audit log of mutating requests
// and of refused callers is audit.go.
package trust
