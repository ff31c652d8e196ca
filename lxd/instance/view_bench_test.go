package instance

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"github.com/berth-dev/berth/lxd/db"
)

// BenchmarkViewList500 is the server's part of GET /1.0/instances?recursion=2 that does
// not depend on what runs: 500 instances (the config a launched container has, the
// default profile's NIC and root disk) read from the database, expanded, rendered and
// encoded. None runs here, so no state is gathered.
func BenchmarkViewList500(b *testing.B) {
	ctx := context.Background()
	d, dir := stateDB(b)
	idmap := `[{"Isuid":true,"Isgid":false,"Hostid":1000000,"Nsid":0,"Maprange":65536},{"Isuid":false,"Isgid":true,"Hostid":1000000,"Nsid":0,"Maprange":65536}]`
	err := d.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		for i := range 500 {
			config := map[string]string{
				"image.architecture": "x86_64", "image.description": "Debian bookworm (berth)", "image.os": "debian", "image.release": "bookworm",
				"volatile.base_image":       "39cd0dcaa3292c854f4db2ae8bed27bf89bc0a880f2ff46b2e935edb480617ba",
				"volatile.eth0.host_name":   fmt.Sprintf("veth%08x", i),
				"volatile.eth0.hwaddr":      fmt.Sprintf("00:16:3e:54:%02x:%02x", i/256, i%256),
				"volatile.idmap.base":       "1000000",
				"volatile.idmap.next":       idmap,
				"volatile.last_state.idmap": idmap,
				"volatile.last_state.power": "STOPPED",
				"volatile.uuid":             fmt.Sprintf("0b4d86a4-839a-460f-8205-a4a92dfe%04x", i),
			}

			_, err := tx.CreateInstance(ctx, db.Instance{Name: fmt.Sprintf("c%03d", i), Type: "container", Architecture: "x86_64",
				Config: config, Devices: map[string]map[string]string{}, Profiles: []string{"default"}})
			if err != nil {
				return err
			}
		}

		return nil
	})
	if err != nil {
		b.Fatal(err)
	}

	m := NewManager(Config{Dir: dir, DB: d, Pools: fakePools{"default": &recordPool{}}, PoolName: "default",
		Log: slog.New(slog.DiscardHandler), MemberID: db.SelfMemberID})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		list, err := m.View().List(ctx, true)
		if err != nil || len(list) != 500 {
			b.Fatal(len(list), err)
		}

		_, err = json.Marshal(list)
		if err != nil {
			b.Fatal(err)
		}
	}
}
