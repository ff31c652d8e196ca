package migration

import (
	"encoding/json"
	"testing"

	"google.golang.org/protobuf/proto"
)

// LXD 5.0's source decodes the index acknowledgement into a struct without tags: the
// keys must be the Go field names, or it reads status 0 and fails the negotiation.
func TestIndexResponseKeys(t *testing.T) {
	refresh := false
	data, err := json.Marshal(indexResponse{StatusCode: 200, Refresh: &refresh})
	if err != nil {
		t.Fatal(err)
	}

	var lxd struct {
		StatusCode int
		Error      string
		Refresh    *bool
	}

	err = json.Unmarshal(data, &lxd)
	if err != nil || lxd.StatusCode != 200 || lxd.Refresh == nil || *lxd.Refresh {
		t.Fatalf("LXD reads %s as %+v (%v)", data, lxd, err)
	}
}

// LXD's snapshots say in their config which ids their tree holds; the header's map is
// the instance's.
func TestTreeIDMap(t *testing.T) {
	header := []*IDMapType{{Hostid: proto.Int32(1000000)}}
	if got, err := TreeIDMap(header, map[string]string{}); err != nil || len(got) != 1 {
		t.Fatalf("no key: %v %v", got, err)
	}

	berth := map[string]string{LastStateIDMapKey: `[{"Isuid":true,"Isgid":false,"Hostid":2000000,"Nsid":0,"Maprange":65536}]`}
	if got, err := TreeIDMap(nil, berth); err != nil || len(got) != 0 {
		t.Fatalf("a Berth sender (no header map): %v %v", got, err)
	}

	if got, err := TreeIDMap(header, map[string]string{LastStateIDMapKey: "[]"}); err != nil || len(got) != 0 {
		t.Fatalf("[]: %v %v", got, err)
	}

	got, err := TreeIDMap(header, map[string]string{LastStateIDMapKey: `[{"Isuid":true,"Isgid":false,"Hostid":2000000,"Nsid":0,"Maprange":65536}]`})
	if err != nil || len(got) != 1 || got[0].GetHostid() != 2000000 || !got[0].GetIsuid() || got[0].GetMaprange() != 65536 {
		t.Fatalf("a map: %v %v", got, err)
	}

	for _, bad := range []string{"{", `[{"Hostid":-1,"Maprange":1}]`, `[{"Hostid":1,"Maprange":0}]`, `[{"Hostid":4294967296,"Maprange":1}]`} {
		if _, err := TreeIDMap(header, map[string]string{LastStateIDMapKey: bad}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
