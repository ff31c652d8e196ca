package main

import (
	"net/http"

	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/trust"
)

// ownOperation records the certificate of r's caller on op, so that removing the
// certificate ends op: its websockets carry their own secrets and may be connected
// without any certificate, so closing the client's connections is not enough. A
// certificate removed while r was served is seen here or by the removal's sweep.
func ownOperation(d *Daemon, r *http.Request, op *operations.Operation) {
	c := callerOf(r)
	if c.Via != trust.ViaTLS || !c.Trusted {
		return
	}

	op.SetOwner(c.Fingerprint)
	if _, ok := d.trust.Lookup(c.Fingerprint); !ok {
		op.Abort()
	}
}
