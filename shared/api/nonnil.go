package api

// NonNil returns m, or an empty map when m is nil: config, devices and properties are
// objects on the wire ({} rather than null, as LXD sends them), and code that fills them
// in place needs a map to write to.
func NonNil[M ~map[K]V, K comparable, V any](m M) M {
	if m == nil {
		return M{}
	}

	return m
}
