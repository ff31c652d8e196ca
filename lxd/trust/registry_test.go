package trust

import "github.com/berth-dev/berth/lxd/operations"

func newRegistry() *operations.Registry { return operations.NewRegistry(nil, quiet()) }
