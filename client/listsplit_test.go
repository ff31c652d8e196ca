package client

import (
	"encoding/json"
	"fmt"
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
		`{"type":"sync","metadata":[{"k\"ey":"v\\"}],"type":"sync"}`,
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

// FuzzSyncListElems: whenever the splitter accepts an answer, encoding/json accepts it
// too and finds the same elements.
func FuzzSyncListElems(f *testing.F) {
	f.Add(`{"type":"sync","metadata":[{"a":"]\"}"},[1,{}],"x"]}`)
	f.Add(`{"type":"sync","metadata":[]}`)
	f.Add(`{"metadata":[1,2,3],"type":"sync"}`)
	f.Fuzz(func(t *testing.T, in string) {
		elems, ok := syncListElems([]byte(in))
		if !ok {
			return
		}

		var env struct {
			Metadata []json.RawMessage `json:"metadata"`
		}

		err := json.Unmarshal([]byte(in), &env)
		if err != nil {
			// Well bracketed but not JSON (a bad scalar, say): the elements' own
			// Unmarshal refuses it, and the whole answer is decoded again.
			var v []any
			if decodeListInto(elems, &v) == nil {
				t.Fatalf("%q: encoding/json refuses it (%v) but its elements decode", in, err)
			}

			return
		}

		if len(elems) != len(env.Metadata) {
			t.Fatalf("%q: %d elements, encoding/json finds %d", in, len(elems), len(env.Metadata))
		}

		for i := range elems {
			if string(elems[i]) != string(env.Metadata[i]) {
				t.Fatalf("%q: element %d is %q, want %q", in, i, elems[i], env.Metadata[i])
			}
		}
	})
}
