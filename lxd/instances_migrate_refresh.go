package main

import (
	"context"

	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/lxd/migration"
)

// refresh brings the existing, stopped instance m.key up to date with the source (lxc copy
// --refresh, LXD's container_incremental_copy): the answer asked only for the snapshots
// it lacks; each tree is received by the same confined receiver as a copy's (as the
// container, into a fresh pool image), against the instance's current root and the tree
// received before (rsync's --copy-dest), so unchanged files are copied locally and a
// changed file travels as its delta. The instance changes only once all arrived.
func (m *migrationSink) refresh(ctx context.Context, sink *migration.Sink, answer *migration.MigrationHeader) error {
	ctx, cancel := watchSource(ctx, sink)
	defer cancel(nil)

	snaps, treeMaps, err := incomingSnapshots(sink, answer)
	if err != nil {
		return err
	}

	keep := []string{}
	for _, s := range sink.Offer.GetSnapshots() {
		keep = append(keep, s.GetName())
	}

	keep = append(keep, sink.Offer.GetSnapshotNames()...)
	rx := m.treeReceiver(sink, answer, treeMaps)
	err = m.d.migrations.RefreshFromTrees(ctx, instance.Refresh{
		Name:      m.key,
		Snapshots: snaps,
		Keep:      keep,
		FillAs: func(ctx context.Context, ids idmap.Set, tree, current, rootfsDir string) error {
			return rx.receive(ctx, ids, tree, rootfsDir, "", migration.Basis{Dir: current, Root: true})
		},
	})
	err = withCause(ctx, err)
	if err != nil {
		return err
	}

	m.d.log.Info("refreshed instance", "instance", m.key, "snapshots_received", len(snaps), "received_bytes", rx.moved)
	return nil
}
