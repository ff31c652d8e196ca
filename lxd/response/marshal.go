package response

import (
	"encoding/json"
	"reflect"
	"runtime"

	"github.com/berth-dev/berth/lxd/parallel"
)

// minPart is the fewest elements encoded as a part of their own. A full instance is
// ~3.3 kB of JSON and ~25 us to encode: for fewer, the goroutine and the joining copy
// cost about what they save.
const minPart = 16

// marshalMetadata is json.Marshal(v), byte for byte; a long slice (a list of instances)
// is encoded in parts on every CPU and the parts joined. Encoding was the biggest part of
// GET /1.0/instances?recursion=2 (30% of berthd's CPU for 60 instances), and the client
// waits for all of it. On the development VM's two CPUs (which scale poorly: ~1.3x at
// best) BenchmarkMarshal60 gave 0.95-1.03 ms against 1.06-1.25 ms for 60 instances, and
// 7.1-7.7 ms against 9.4-10.5 ms for 500.
func marshalMetadata(v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || rv.Kind() != reflect.Slice || marshalsItself(rv.Type()) {
		return json.Marshal(v)
	}

	n := rv.Len()
	parts := min(runtime.GOMAXPROCS(0), n/minPart)
	if parts < 2 {
		return json.Marshal(v)
	}

	// An element's MarshalJSON that panics panics the request, as one Marshal would.
	encoded := make([][]byte, parts)
	errs := make([]error, parts)
	parallel.Run(parts, func(p int) {
		lo, hi := n*p/parts, n*(p+1)/parts
		encoded[p], errs[p] = json.Marshal(rv.Slice(lo, hi).Interface())
	})

	size := 0
	for p := range parts {
		if errs[p] != nil {
			return nil, errs[p]
		}

		size += len(encoded[p])
	}

	// Each part is "[...]" of at least one element: joined, "[" + the parts' elements
	// separated by commas + "]".
	out := make([]byte, 0, size)
	out = append(out, '[')
	for p, part := range encoded {
		if p > 0 {
			out = append(out, ',')
		}

		out = append(out, part[1:len(part)-1]...)
	}

	return append(out, ']'), nil
}

var (
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[interface{ MarshalText() ([]byte, error) }]()
)

// marshalsItself reports whether a slice type encodes itself (as a whole, so not in
// parts), or is []byte (base64, not an array).
func marshalsItself(t reflect.Type) bool {
	if t.Elem().Kind() == reflect.Uint8 {
		return true
	}

	for _, tt := range []reflect.Type{t, reflect.PointerTo(t)} {
		if tt.Implements(marshalerType) || tt.Implements(textMarshalerType) {
			return true
		}
	}

	return false
}
