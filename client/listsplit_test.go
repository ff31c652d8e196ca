package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// TestSyncListElems: the elements found are those encoding/json sees, whatever the
// strings hold; anything but a well-formed sync answer with an array is refused.
func TestSyncListElems(t *testing.T) {
	good := []string{
		`{"type":"sync","status":"Success","metadata":[{"a":1},{"b":"x"}]}`,
		` { "metadata" : [ {"a":"]}\"[{,"} , 2 , "s,]" , null , [1,[2]] ] , "type" : "sync" } `,
		`{"type":"sync","metadata":[]}`,
		`{"type":"sync","metadata":[{"k\"ey":"v\\"}]}`,
		`{"type":"sync","status":"Success","status_code":200,"operation":"","error_code":0,"error":"","metadata":[{"name":"c1"}]}`,
	}

	for _, in := range good {
		elems, ok := syncListElems([]byte(in))
		if !ok {
			t.Errorf("%s: refused", in)
			continue
		}

		var env struct {
			Metadata []json.RawMessage `json:"metadata"`
		}

		if err := json.Unmarshal([]byte(in), &env); err != nil {
			t.Fatalf("%s: %v", in, err)
		}

		if len(elems) != len(env.Metadata) {
			t.Errorf("%s: %d elements, encoding/json finds %d", in, len(elems), len(env.Metadata))
			continue
		}

		for i := range elems {
			if string(elems[i]) != string(env.Metadata[i]) {
				t.Errorf("%s: element %d is %q, want %q", in, i, elems[i], env.Metadata[i])
			}
		}
	}

	bad := []string{
		``, `[]`, `{}`, `{"type":"sync"}`,
		`{"type":"async","metadata":[1]}`,
		`{"type":"error","error":"x","metadata":[1]}`,
		`{"type":"sync","metadata":{"a":1}}`,
		`{"type":"sync","metadata":[1,2]} trailing`,
		`{"type":"sync","metadata":[1,2}`,
		`{"type":"sync","metadata":[{"a":"unterminated]}`,
		`{"type":"sync","metadata":[1,,2]}`,
		`{"type":"sync","metadata":[1 2]}`,
		`{"type":"sync" "metadata":[1]}`,
		`{"type":"sync","metadata":[1],}`,
		// What encoding/json would read otherwise, or refuse: the answer is then decoded
		// whole, the ordinary way.
		`{"type":"sync","metadata":[1],"type":"sync"}`,
		`{"type":"sync","status":tru,"metadata":[1]}`,
		`{"type":"sync","x":{],"metadata":[1]}`,
		"{\"type\":\"sync\",\"error\":\"\x01\",\"metadata\":[1]}",
		`{"type":"sync","metadata":[1],"METADATA":[2,3]}`,
		`{"type":"sync","metadata":[1],"meta\u0064ata":[2,3]}`,
		`{"type":"sync","metadata":[],"Type":"error","error":"boom","error_code":500}`,
		`{"type":"sync","metadata":[1],"metadata":[2]}`,
		`{"type":"sync","metadata":[` + strings.Repeat("[", maxElemDepth+1) + strings.Repeat("]", maxElemDepth+1) + `]}`,
	}

	for _, in := range bad {
		if elems, ok := syncListElems([]byte(in)); ok {
			t.Errorf("%q: accepted, elements %q", in, elems)
		}
	}
}

type listElem struct {
	Name  string            `json:"name"`
	N     int               `json:"n"`
	Extra map[string]string `json:"extra"`
}

// TestDecodeListInto: the parallel decode gives what one Unmarshal gives, and an element
// that does not decode is an error that leaves the target alone.
func TestDecodeListInto(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"type":"sync","metadata":[`)
	for i := range 100 {
		if i > 0 {
			b.WriteString(",")
		}

		fmt.Fprintf(&b, `{"name":"c%03d","n":%d,"extra":{"k":"v]%d"}}`, i, i, i)
	}

	b.WriteString("]}")

	elems, ok := syncListElems([]byte(b.String()))
	if !ok {
		t.Fatal("refused")
	}

	var got []listElem
	if err := decodeListInto(elems, &got); err != nil {
		t.Fatal(err)
	}

	var want struct {
		Metadata []listElem `json:"metadata"`
	}

	if err := json.Unmarshal([]byte(b.String()), &want); err != nil {
		t.Fatal(err)
	}

	if !reflect.DeepEqual(got, want.Metadata) {
		t.Errorf("decoded %v, want %v", got, want.Metadata)
	}

	elems[57] = []byte(`{"name":3}`)
	kept := []listElem{{Name: "kept"}}
	if err := decodeListInto(elems, &kept); err == nil || len(kept) != 1 || kept[0].Name != "kept" {
		t.Errorf("a bad element: %v, target %v", err, kept)
	}
}

// FuzzSyncListElems: whenever the per-element decoding succeeds, decoding the answer whole
// (decodeInto, what the client did before) succeeds too, with the same result.
func FuzzSyncListElems(f *testing.F) {
	f.Add(`{"type":"sync","metadata":[{"a":"]\"}"},[1,{}],"x"]}`)
	f.Add(`{"type":"sync","metadata":[]}`)
	f.Add(`{"metadata":[1,2,3],"type":"sync"}`)
	f.Add(`{"type":"sync","status":"Success","status_code":200,"operation":"","error_code":0,"error":"","metadata":[{"name":"c1","state":{"network":{"eth0":{"addresses":[]}}}}]}`)
	f.Add(`{"type":"sync","status":tru,"metadata":[1]}`)
	f.Add(`{"type":"sync","metadata":[1],"METADATA":[2]}`)
	f.Add(`{"type":"error","error":"boom","error_code":500,"metadata":[1]}`)
	f.Add(`{"type":"sync","metadata":[{"NAME":"a","n":1e3,"f":-0.5,"on":true,"ptr":null,"list":["\u00e9"],"config":{"k":"v"},"devices":{"d":{"type":"nic"}},"raw":{"x":[1]},"any":[1,"x"],"inner":{"at":[1,2]},"name2":"b","count":255,"name":"dup"}]}`)
	f.Add(`{"type":"sync","metadata":[{"n":1.5},{"count":256},{"list":"x"},{"name":"\ud800"},{"config":{"k":1}}]}`)
	f.Add(`{"type":"sync","metadata":[{"NAME":"only","Inner":{"AT":[3]}}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		elems, ok := syncListElems([]byte(in))
		if !ok {
			return
		}

		var fast []any
		if decodeListInto(elems, &fast) != nil {
			return // decoded whole instead
		}

		var whole []any
		resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}}
		_, err := decodeInto(resp, []byte(in), http.MethodGet, "/1.0/instances", &whole)
		if err != nil {
			t.Fatalf("%q: decoded per element, but whole it is an error: %v", in, err)
		}

		if !reflect.DeepEqual(fast, whole) {
			t.Fatalf("%q: per element %#v, whole %#v", in, fast, whole)
		}

		// Typed, as the lists are: the per-element decoder (jsonv2 with encoding/json's
		// semantics) must agree with encoding/json on what fits which field.
		var fastTyped, wholeTyped []fuzzElem
		if decodeListInto(elems, &fastTyped) != nil {
			return
		}

		_, err = decodeInto(resp, []byte(in), http.MethodGet, "/1.0/instances", &wholeTyped)
		if err != nil {
			t.Fatalf("%q: decoded per element as %T, but whole it is an error: %v", in, fastTyped, err)
		}

		if !reflect.DeepEqual(fastTyped, wholeTyped) {
			t.Fatalf("%q: per element %#v, whole %#v", in, fastTyped, wholeTyped)
		}
	})
}

// fuzzElem has a field of each kind the API's objects have.
type fuzzElem struct {
	Name     string                       `json:"name"`
	N        int64                        `json:"n"`
	F        float64                      `json:"f"`
	On       bool                         `json:"on"`
	Ptr      *int                         `json:"ptr"`
	List     []string                     `json:"list"`
	Config   map[string]string            `json:"config"`
	Devices  map[string]map[string]string `json:"devices"`
	Raw      json.RawMessage              `json:"raw"`
	Any      any                          `json:"any"`
	Inner    fuzzInner                    `json:"inner"`
	fuzzBase                              // embedded: its fields are inlined
}

type fuzzInner struct {
	At []int `json:"at"`
}

type fuzzBase struct {
	Name2 string `json:"name2"`
	Count uint8  `json:"count"`
}

// TestDecodeListIntoNil: a nil target is an error, not a panic.
func TestDecodeListIntoNil(t *testing.T) {
	var nilSlice *[]listElem
	for _, target := range []any{nil, nilSlice, []listElem{}} {
		if err := decodeListInto([][]byte{[]byte(`{}`)}, target); err == nil {
			t.Errorf("%T: no error", target)
		}
	}
}
