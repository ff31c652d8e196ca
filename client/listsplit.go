package client

import (
	"bytes"
	"encoding/json"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"

	jsonv2 "github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"
)

// A list answer (every instance with its state: 3.5 kB of JSON each) is decoded one
// element at a time, on every CPU: encoding/json reads its input twice (a validating
// scan, then the decode), so one Unmarshal of 60 instances was two thirds of `berth
// list`'s own time on the development VM. Finding where the elements start and end takes
// one pass that only follows strings and brackets (syncListElems); each element's own
// Unmarshal then validates it. Any doubt (an answer of another shape, an element that
// does not decode) falls back to decoding the answer whole, which also says what is wrong.
//
// The elements are decoded by encoding/json/v2's module (go-json-experiment/json, by the
// authors of the coming standard package) with the options that make it decode as
// encoding/json does. It validates as it decodes, in one pass, with less reflection: a
// list of 60 instances decoded in about half the CPU time, and `berth list` of 60 took
// ~1.5 ms less on the development VM. encoding/json stays everywhere else (and decodes
// the whole answer when an element fails, for its error message).

// v1Semantics makes jsonv2 decode as encoding/json does: names matched without regard to
// case, duplicate names and invalid UTF-8 accepted, Unmarshaler methods called.
var v1Semantics = jsonv1.DefaultOptionsV1()

// minParallel is the smallest list decoded on more than one CPU: below it the goroutines
// cost more than they save.
const minParallel = 8

// decodeListInto decodes the elements elems into target, a pointer to a slice, on up to
// GOMAXPROCS goroutines.
func decodeListInto(elems [][]byte, target any) error {
	rv := reflect.ValueOf(target)
	if !rv.IsValid() || rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Slice {
		return &json.InvalidUnmarshalError{Type: reflect.TypeOf(target)}
	}

	s := reflect.MakeSlice(rv.Elem().Type(), len(elems), len(elems))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(elems)/minParallel))

	var next atomic.Int64
	var stop atomic.Bool // one element failed: the answer is decoded whole instead
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(elems) || stop.Load() {
					return
				}

				err := jsonv2.Unmarshal(elems[i], s.Index(i).Addr().Interface(), v1Semantics)
				if err != nil {
					once.Do(func() { firstErr = err })
					stop.Store(true)
					return
				}
			}
		}()
	}

	wg.Wait()
	if firstErr != nil {
		return firstErr
	}

	rv.Elem().Set(s)

	return nil
}

// envelopeKeys are the keys of an LXD answer's envelope. An answer with any other key (in
// another case, escaped, repeated) is decoded the ordinary way: encoding/json matches keys
// without regard to case, and the last of a repeated key wins.
var envelopeKeys = map[string]bool{
	"type": true, "status": true, "status_code": true, "operation": true,
	"error_code": true, "error": true, "metadata": true,
}

// maxElemDepth keeps an element's nesting within what encoding/json accepts of the whole
// answer (10000 levels, of which the envelope and the list take two).
const maxElemDepth = 10000 - 2

// syncListElems returns the elements of the metadata of data, an LXD sync answer whose
// metadata is an array, as subslices of data; false if data is anything else (the caller
// then decodes it the ordinary way). The envelope without its metadata must be valid
// JSON; the elements are validated by their own decoding.
func syncListElems(data []byte) ([][]byte, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, false
	}

	seen := map[string]bool{}
	metaStart, metaEnd := -1, -1
	isSync := false
	i = skipSpace(data, i+1)
	for {
		if i >= len(data) || data[i] != '"' {
			return nil, false
		}

		end, ok := skipString(data, i)
		if !ok {
			return nil, false
		}

		key := string(data[i+1 : end-1])
		if !envelopeKeys[key] || seen[key] {
			return nil, false
		}

		seen[key] = true
		i = skipSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return nil, false
		}

		i = skipSpace(data, i+1)
		end, _, ok = skipValue(data, i)
		if !ok {
			return nil, false
		}

		switch key {
		case "type":
			isSync = string(data[i:end]) == `"sync"`
		case "metadata":
			metaStart, metaEnd = i, end
		}

		i = skipSpace(data, end)
		if i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
			continue
		}

		if i < len(data) && data[i] == '}' {
			break
		}

		return nil, false
	}

	if skipSpace(data, i+1) != len(data) || !isSync || metaStart < 0 || data[metaStart] != '[' {
		return nil, false
	}

	// The rest of the envelope, its metadata taken out: a few dozen bytes to validate.
	env := make([]byte, 0, len(data)-(metaEnd-metaStart)+4)
	env = append(append(append(env, data[:metaStart]...), "null"...), data[metaEnd:]...)
	if !json.Valid(env) {
		return nil, false
	}

	return arrayElems(data[metaStart:metaEnd])
}

// arrayElems splits a JSON array (its brackets included) into its elements.
func arrayElems(a []byte) ([][]byte, bool) {
	elems := [][]byte{}
	i := skipSpace(a, 1)
	if i < len(a) && a[i] == ']' {
		return elems, skipSpace(a, i+1) == len(a)
	}

	for {
		end, depth, ok := skipValue(a, i)
		if !ok || end == i || depth > maxElemDepth {
			return nil, false
		}

		elems = append(elems, a[i:end])
		i = skipSpace(a, end)
		if i < len(a) && a[i] == ',' {
			i = skipSpace(a, i+1)
			continue
		}

		if i < len(a) && a[i] == ']' {
			return elems, skipSpace(a, i+1) == len(a)
		}

		return nil, false
	}
}

// skipValue returns the end of the value that starts at b[i] and its deepest nesting: a
// string, an object or array (followed to its closing bracket, strings and nesting
// only), or a scalar (up to the next delimiter). Nothing more is checked: the value is
// validated afterwards.
func skipValue(b []byte, i int) (int, int, bool) {
	if i >= len(b) {
		return 0, 0, false
	}

	switch b[i] {
	case '"':
		end, ok := skipString(b, i)
		return end, 0, ok
	case '{', '[':
		depth, deepest := 0, 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end, ok := skipString(b, i)
				if !ok {
					return 0, 0, false
				}

				i = end - 1
			case '{', '[':
				depth++
				deepest = max(deepest, depth)
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, deepest, true
				}
			}
		}

		return 0, 0, false
	}

	start := i
	for i < len(b) && !isDelim(b[i]) {
		i++
	}

	return i, 0, i > start
}

// skipString returns the end of the string that starts at b[i] (its closing quote
// included): the first quote after it that an even run of backslashes precedes.
func skipString(b []byte, i int) (int, bool) {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, false
		}

		q := j + k
		escapes := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			escapes++
		}

		if escapes%2 == 0 {
			return q + 1, true
		}

		j = q + 1
	}
}

func isDelim(c byte) bool {
	switch c {
	case ',', '}', ']', ':', ' ', '\t', '\n', '\r', '"', '{', '[':
		return true
	}

	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}

	return i
}
