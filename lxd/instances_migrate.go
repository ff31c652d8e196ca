package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/lxd/backup"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/lxd/migration"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
	"github.com/berth-dev/berth/shared/validate"
	"github.com/berth-dev/berth/shared/ws"
)

// maxMetadataYAML bounds the metadata.yaml a migrated volume brings.
const maxMetadataYAML = 1 << 20

// instancesPostMigration answers POST /1.0/instances with source type "migration": the
// target of lxc copy/move from another server. Pull mode dials the source operation's
// websockets; push mode (lxc --mode push, and relay where lxc bridges both) holds its own
// for the source (or lxc) to dial. The instance is made by the creation pipeline from the
// trees the stream brings (instance.CreateFromTrees: a fresh id range, its own volatile
// keys unless the request keeps them, as lxc move does), and nothing of it stays when the
// transfer fails.
func instancesPostMigration(d *Daemon, r *http.Request, req api.InstancesPost) response.Response {
	if d.migrations == nil {
		return response.NotImplemented(api.StatusErrorf(http.StatusNotImplemented, "migration is not supported"))
	}

	s := req.Source
	if s.Live {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "live migration is not supported: stop the instance first, or copy it as of now with --stateless"))
	}

	err := validate.InstanceName(req.Name)
	if err != nil {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "invalid instance name: %v", err))
	}

	key, err := project.KeyFor(projectOf(r), req.Name)
	if err != nil {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "invalid instance name: %v", err))
	}

	// A refresh (lxc copy --refresh) of an instance that exists updates it; of one that
	// does not, it is a copy (as in LXD).
	var have map[string]time.Time
	_, err = d.instances.Get(r.Context(), key, false)
	if err == nil && !s.Refresh {
		return response.Conflict(fmt.Errorf("instance %q already exists", req.Name))
	}

	if err == nil {
		have, err = d.migrations.Snapshots(r.Context(), key)
		if err != nil {
			return response.SmartError(err)
		}
	}

	if s.Certificate != "" {
		_, err := client.ParseCertificate([]byte(s.Certificate))
		if err != nil {
			return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "invalid source certificate: %v", err))
		}
	}

	sink := &migrationSink{d: d, key: key, req: req, have: have}
	switch s.Mode {
	case "", "pull":
		_, _, err := migrationOperation(s.Operation, s.Websockets)
		if err != nil {
			return response.SmartError(err)
		}

		return d.task("Creating instance", instanceResources(key), d.thenStart(req.Start, have == nil, key, func(ctx context.Context, op *operations.Operation) error {
			control, fs, err := dialMigration(ctx, s.Operation, s.Certificate, s.Websockets)
			if err != nil {
				return err
			}

			defer func() { _ = ws.Close(control, ""); _ = ws.Close(fs, "") }()
			return sink.run(ctx, control, fs)
		}))
	case "push":
		sess, md := migrationSession()
		op, err := d.ops.Create(api.OperationClassWebsocket, "Creating instance", instanceResources(key), md,
			d.thenStart(req.Start, have == nil, key, func(ctx context.Context, op *operations.Operation) error {
				defer sess.Close("")
				err := waitMigration(ctx, sess)
				if err != nil {
					return err
				}

				return sink.run(ctx, sess.Conn("control"), sess.Conn("fs"))
			}),
			func(_ *operations.Operation, r *http.Request, w http.ResponseWriter) error { return sess.Connect(r, w) }, nil)
		if err != nil {
			return response.InternalError(err)
		}

		ownOperation(d, r, op)
		return response.OperationResponse(op)
	}

	return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "migration mode %q is not supported (pull, push)", s.Mode))
}

// migrationSink receives one instance.
type migrationSink struct {
	d   *Daemon
	key string
	req api.InstancesPost
	// have, when not nil, makes this a refresh of the existing instance key: its
	// snapshots' creation dates.
	have map[string]time.Time
}

func (m *migrationSink) run(ctx context.Context, control, fs *ws.Conn) error {
	sink := &migration.Sink{Control: control, FS: fs}
	if m.have != nil {
		sink.Have = map[string]int64{}
		for n, t := range m.have {
			sink.Have[n] = t.Unix()
		}
	}

	answer, err := sink.Accept(ctx)
	if err != nil {
		return err
	}

	if m.have != nil {
		err = m.refresh(ctx, sink, answer)
	} else {
		err = m.receive(ctx, sink, answer)
	}

	_ = sink.Finish(err)
	return err
}

// watchSource cancels the context it returns when the source reports a failure.
func watchSource(ctx context.Context, sink *migration.Sink) (context.Context, context.CancelCauseFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case err := <-sink.Failed():
			cancel(fmt.Errorf("the source stopped: %w", err))
		case <-ctx.Done():
		}
	}()

	return ctx, cancel
}

// incomingSnapshots are the snapshots the answer takes, checked, with the id maps of
// their trees on the wire (LXD's per-snapshot disk id maps).
func incomingSnapshots(sink *migration.Sink, answer *migration.MigrationHeader) ([]db.Snapshot, map[string][]*migration.IDMapType, error) {
	snaps := []db.Snapshot{}
	treeMaps := map[string][]*migration.IDMapType{} // LXD's per-snapshot disk id maps
	for _, p := range answer.GetSnapshots() {
		s := migration.SnapshotFromProto(p)
		tm, err := migration.TreeIDMap(sink.Offer.GetIdmap(), s.Config)
		if err != nil {
			return nil, nil, api.StatusErrorf(http.StatusBadRequest, "snapshot %q: %v", s.Name, err)
		}

		treeMaps[s.Name] = tm
		config := migratedConfig(s.Config)
		err = refuseHostReaching(s.Devices)
		if err == nil {
			err = instance.ValidateDevices(s.Devices)
		}

		if err == nil {
			err = instance.ValidateConfig(config)
		}

		if err != nil {
			return nil, nil, api.StatusErrorf(http.StatusBadRequest, "snapshot %q: %v", s.Name, err)
		}

		snaps = append(snaps, db.Snapshot{Name: s.Name, Architecture: s.Architecture, Ephemeral: s.Ephemeral,
			CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt, Config: config, Devices: s.Devices, Profiles: s.Profiles})
	}

	return snaps, treeMaps, nil
}

func (m *migrationSink) receive(ctx context.Context, sink *migration.Sink, answer *migration.MigrationHeader) error {
	ctx, cancel := watchSource(ctx, sink)
	defer cancel(nil)

	snaps, treeMaps, err := incomingSnapshots(sink, answer)
	if err != nil {
		return err
	}

	rx := m.treeReceiver(sink, answer, treeMaps)
	put := m.req.InstancePut
	err = m.d.migrations.CreateFromTrees(ctx, instance.Incoming{
		Instance: db.Instance{Name: m.key, Architecture: put.Architecture, Description: put.Description, Ephemeral: put.Ephemeral,
			Config: migratedConfig(put.Config), Devices: api.NonNil(put.Devices), Profiles: put.Profiles},
		Snapshots: snaps,
		Identity:  instance.KeepIdentity,
		Source:    "migration",
		FillAs: func(ctx context.Context, ids idmap.Set, tree, rootfsDir, metaDir string) error {
			if tree != "" {
				metaDir = "" // a snapshot's metadata is the instance's
			}

			return rx.receive(ctx, ids, tree, rootfsDir, metaDir)
		},
	})

	return withCause(ctx, err)
}

// treeReceiver receives one migration's trees in order (snapshots oldest first, then
// the instance), each by the confined receiver (migration.Recv, as the container) into
// the pool image being made, against the tree received before it.
type treeReceiver struct {
	m        *migrationSink
	sink     *migration.Sink
	treeMaps map[string][]*migration.IDMapType // LXD's per-snapshot disk id maps
	features []string
	prev     string // the pool image of the tree received before, the next one's basis
	moved    int64  // bytes received
}

func (m *migrationSink) treeReceiver(sink *migration.Sink, answer *migration.MigrationHeader, treeMaps map[string][]*migration.IDMapType) *treeReceiver {
	return &treeReceiver{m: m, sink: sink, treeMaps: treeMaps, features: migration.FeatureNames(answer.GetRsyncFeatures())}
}

// receive fills rootfsDir (and metaDir, if not "") with tree ("" is the instance) mapped
// into ids, against the tree before it and the extra bases.
func (rx *treeReceiver) receive(ctx context.Context, ids idmap.Set, tree, rootfsDir, metaDir string, extra ...migration.Basis) error {
	header := rx.sink.Offer.GetIdmap()
	if tm, ok := rx.treeMaps[tree]; ok && tree != "" {
		header = tm
	}

	mapping, err := migration.ReceiveMapping(ids, header)
	if err != nil {
		return err
	}

	vol := filepath.Join(filepath.Dir(rootfsDir), "migration-volume")
	err = os.Mkdir(vol, 0o755)
	if err != nil {
		return err
	}

	defer os.RemoveAll(vol)
	bases := append(basesOf(rx.prev), extra...)
	n, err := migration.Recv(ctx, rx.m.d.migrationJails(), vol, bases, ids, mapping, rx.sink.FS, rx.features)
	rx.moved += n
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return cause
		}

		return err
	}

	err = adoptVolume(vol, rootfsDir, metaDir)
	if err == nil {
		rx.prev = finalImageDir(rootfsDir)
	}

	return err
}

// withCause adds why ctx ended (the source went away) to err, unless err says it.
func withCause(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}

	if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
		return fmt.Errorf("%w (%v)", err, cause)
	}

	return err
}

// basesOf is the basis a tree is received against: the pool image prev (the tree
// received before) if it holds a rootfs directory.
func basesOf(prev string) []migration.Basis {
	if fi, err := os.Lstat(filepath.Join(prev, "rootfs")); prev == "" || err != nil || !fi.IsDir() {
		return nil
	}

	return []migration.Basis{{Dir: prev}}
}

// refuseHostReaching refuses the devices of a snapshot the source describes that reach
// the host, as an imported backup's are: the header is the peer's alone (no client of
// this server chose them), and a restore would make them the instance's.
func refuseHostReaching(devices map[string]map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(devices)) {
		why := backup.HostReaching(devices[name])
		if why != "" {
			return fmt.Errorf("device %q (%s) %s: refused from a migration source; add it again after the copy", name, devices[name]["type"], why)
		}
	}

	return nil
}

// finalImageDir is where the pool image being filled in rootfsDir's parent (a temporary
// ".tmp-<name>-<random>" directory) is once made: "<name>" beside it. "" if the layout is
// not that one (then the next tree has no basis and travels whole).
func finalImageDir(rootfsDir string) string {
	tmp := filepath.Dir(rootfsDir)
	name, ok := strings.CutPrefix(filepath.Base(tmp), ".tmp-")
	i := strings.LastIndex(name, "-")
	if !ok || i <= 0 {
		return ""
	}

	return filepath.Join(filepath.Dir(tmp), name[:i])
}

// migratedConfig is an instance's config as it arrives, without the keys that describe
// it on its old server: of the volatile keys (the daemon's record, which it acts on: a
// NIC's recorded host end is deleted by name at stop) only its uuid, base image and MAC
// addresses stay when the request or the source's header brings them (lxc move); the new
// server sets its own id maps, state and host interfaces.
func migratedConfig(in map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range in {
		if strings.HasPrefix(k, "volatile.") && k != "volatile.uuid" && k != "volatile.base_image" &&
			!strings.HasSuffix(k, ".hwaddr") {
			continue
		}

		out[k] = v
	}

	return out
}

// adoptVolume takes the received volume vol's rootfs/ as the image's root filesystem
// and, for the instance (metaDir set), its metadata.yaml and templates/. The volume was written by the
// stream: rootfs must be a real directory, metadata.yaml and each template a regular
// file of bounded size, none followed if a link.
func adoptVolume(vol, rootfsDir, metaDir string) error {
	src := filepath.Join(vol, "rootfs")
	fi, err := os.Lstat(src)
	if err != nil || !fi.IsDir() {
		return errors.New("the migrated volume has no rootfs directory")
	}

	err = os.Remove(rootfsDir)
	if err == nil {
		err = os.Rename(src, rootfsDir)
	}

	if err != nil {
		return fmt.Errorf("adopting the migrated root filesystem: %w", err)
	}

	if metaDir == "" {
		return nil
	}

	volDir, err := os.OpenFile(vol, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}

	defer volDir.Close()
	data, ok := readMigratedFile(volDir, "metadata.yaml")
	if !ok {
		return nil // no image metadata: nothing renders at start
	}

	err = os.WriteFile(filepath.Join(metaDir, "metadata.yaml"), data, 0o644)
	if err != nil {
		return err
	}

	// templates/: the regular files in it, bounded; what metadata.yaml names but is
	// missing fails that template's rendering, not the migration.
	err = os.MkdirAll(filepath.Join(metaDir, "templates"), 0o755)
	if err != nil {
		return err
	}

	fd, err := unix.Openat(int(volDir.Fd()), "templates", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}

	tdir := os.NewFile(uintptr(fd), "templates")
	defer tdir.Close()
	entries, err := tdir.ReadDir(maxTemplates)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil
	}

	for _, e := range entries {
		data, ok := readMigratedFile(tdir, e.Name())
		if !ok {
			continue
		}

		err = os.WriteFile(filepath.Join(metaDir, "templates", e.Name()), data, 0o644)
		if err != nil {
			return err
		}
	}

	return nil
}

// maxTemplates bounds the templates a migrated volume brings.
const maxTemplates = 1000

// readMigratedFile reads name in dir if it is a regular file (never a link) of at most
// maxMetadataYAML bytes.
func readMigratedFile(dir *os.File, name string) ([]byte, bool) {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return nil, false
	}

	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}

	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() > maxMetadataYAML {
		return nil, false
	}

	data, err := io.ReadAll(io.LimitReader(f, maxMetadataYAML+1))
	if err != nil || len(data) > maxMetadataYAML {
		return nil, false
	}

	return data, true
}
