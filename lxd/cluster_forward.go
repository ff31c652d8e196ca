package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/lxd/cluster"
	"github.com/berth-dev/berth/lxd/cluster/forward"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/lxd/trust"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

// Any member answers any request (issue 16): a request for an instance that lives on
// another member is relayed to it (lxd/cluster/forward), GET /1.0/instances asks every
// member for its own instances, every member's events appear on every member's
// /1.0/events, and an image a member never received is fetched from one that has it.
// On a host that is not clustered d.forward is nil and none of this runs.

// memberDirectory is what forwarding needs of the membership service: lxd/cluster's
// *cluster.Service through clusterDirectory; the tests' fake.
type memberDirectory interface {
	// Self is this member (its ID and name).
	Self() forward.Member
	// Members lists every member, this one included, with address and Online.
	Members(ctx context.Context) ([]forward.Member, error)
	// ClientTLS is the member-to-member TLS configuration: the cluster certificate as
	// client certificate, the server's pinned.
	ClientTLS() *tls.Config
	// IsMember reports whether c presented the cluster certificate.
	IsMember(c trust.Caller) bool
}

// clusterForward is the daemon's forwarding state.
type clusterForward struct {
	dir memberDirectory
	fwd *forward.Forwarder
	ops *forward.Operations
	// relay follows the other members' events; a request is forwarded to a member only
	// once it follows that member's (waitSubscribed).
	relay *forward.Relay

	// place checks the ?target= of a new instance, or picks its member when there is
	// none (the members' placement), and returns the member's name; nil: this one.
	place func(ctx context.Context, target string) (string, error)

	stop context.CancelFunc
}

// startForwarding turns forwarding on, with dir for the members: the event relay runs
// until stopForwarding, local events carry this member's name, and images missing here
// are fetched from other members.
func (d *Daemon) startForwarding(dir memberDirectory, place func(ctx context.Context, target string) (string, error)) {
	self := dir.Self()
	cf := &clusterForward{dir: dir, ops: forward.NewOperations(), place: place}
	cf.fwd = forward.New(self.Name, dir.ClientTLS(), d.log.With("part", "forward"))
	cf.fwd.OnOperation = cf.ops.Add
	ctx, cancel := context.WithCancel(context.Background())
	cf.stop = cancel
	d.forward = cf

	d.events.SetLocation(self.Name)
	cf.relay = cf.fwd.NewRelay(dir.Members, d.events.Relay)
	go cf.relay.Run(ctx)
	if d.trust != nil {
		go d.refreshTrust(ctx) // the certificates are the cluster's: see others' changes
	}
	if d.images != nil {
		d.images.SetFetcher(imageFetcher{d: d, cf: cf})
	}
}

// stopForwarding ends the event relay and drops idle member connections.
func (d *Daemon) stopForwarding() {
	if d.forward == nil {
		return
	}

	d.forward.stop()
	d.forward.fwd.Close()
}

// subscribeWait bounds how long a request waits for the event relay to follow its
// member's events (a member that restarted a moment ago): short, so that an unreachable
// member's 503 still comes within a few seconds.
const subscribeWait = 2 * time.Second

// relayedCaller is the caller a request acts for: the X-Berth-Caller of a request a
// member relayed, else its own. The relay headers are stripped from anyone but a
// member, so no client can pose as a member or as another caller.
func (d *Daemon) relayedCaller(c trust.Caller, r *http.Request) trust.Caller {
	cf := d.forward
	member := cf != nil && cf.dir.IsMember(c)
	forward.Sanitize(r, member)
	if !member {
		return c
	}

	v := r.Header.Get(forward.HeaderCaller)
	switch v {
	case "":
		return c // the member's own call
	case forward.CallerAdmin:
		// The origin's unix socket (or a member's own service call): every right, as
		// it has there, which the member has here.
		return c
	case forward.CallerUntrusted:
		return trust.Caller{Via: trust.ViaTLS, UID: -1, PID: -1}
	}

	out := trust.Caller{Via: trust.ViaTLS, UID: -1, PID: -1, Fingerprint: v}
	entry, ok := d.trust.Lookup(v)
	if ok {
		out.Trusted, out.Cert = true, entry
	}

	return out
}

// callerHeader is X-Berth-Caller for c.
func (cf *clusterForward) callerHeader(c trust.Caller) string {
	switch {
	case c.Via == trust.ViaUnix || cf.dir.IsMember(c):
		return forward.CallerAdmin
	case c.Via == trust.ViaTLS && c.Trusted:
		return c.Fingerprint
	}

	return forward.CallerUntrusted
}

// forwardIfRemote relays r to the member that should answer it, if that is not this
// one: an instance's requests to its member, a create with ?target= (or placed) to
// that member, an operation's to the member that runs it. A relayed request is never
// relayed again.
func (d *Daemon) forwardIfRemote(ep APIEndpoint, r *http.Request) (response.Response, bool) {
	cf := d.forward
	if cf == nil || forward.IsForwarded(r) {
		return nil, false
	}

	var m *forward.Member
	var err error
	switch {
	case strings.HasPrefix(ep.Path, "instances/{name}"):
		m, err = cf.instanceMember(r.Context(), d.db, pathVar(r, "name"))
	case ep.Path == collectionInstances && r.Method == http.MethodPost:
		err = d.createTargetAllowed(r) // cluster_target_restrict.go
		if err == nil {
			m, r, err = cf.createMember(r)
		}
	case strings.HasPrefix(ep.Path, "operations/{id}"):
		m = d.operationMember(r.Context(), pathVar(r, "id"), trustedFor(r))
	}

	if err != nil {
		return response.SmartError(err), true
	}

	if m == nil {
		return nil, false
	}

	caller := cf.callerHeader(callerOf(r))
	member := *m
	keepBody(r) // streamed to the member when the answer is rendered
	return response.ManualResponse(func(w http.ResponseWriter) error {
		if member.Online {
			cf.relay.WaitSubscribed(r.Context(), member.Name, subscribeWait)
		}

		cf.fwd.Forward(w, r, member, caller)
		return nil
	}), true
}

// member returns the member of id, or of name when id is 0.
func (cf *clusterForward) member(ctx context.Context, id int64, name string) (*forward.Member, error) {
	ms, err := cf.dir.Members(ctx)
	if err != nil {
		return nil, err
	}

	for _, m := range ms {
		if (id != 0 && m.ID == id) || (id == 0 && m.Name == name) {
			return &m, nil
		}
	}

	if id != 0 {
		return nil, fmt.Errorf("member %d of the instance is not a cluster member", id)
	}

	return nil, api.StatusErrorf(http.StatusNotFound, "cluster member %q not found", name)
}

// instanceMember is the member instance key lives on, nil when this one (or when there
// is no such instance: the local handler says so).
func (cf *clusterForward) instanceMember(ctx context.Context, d *db.DB, key string) (*forward.Member, error) {
	var id int64
	err := d.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		id, err = tx.InstanceMember(ctx, key)
		return err
	})
	if err != nil || id == cf.dir.Self().ID {
		return nil, nil //nolint:nilerr // not found: answered locally, as a 404
	}

	return cf.member(ctx, id, "")
}

// createMember is the member a new instance goes to: ?target= (checked), else the
// placement's choice (then set as ?target= on the request, which is returned). nil:
// this one.
func (cf *clusterForward) createMember(r *http.Request) (*forward.Member, *http.Request, error) {
	q := r.URL.Query()
	target := q.Get("target")
	if cf.place != nil {
		placed, err := cf.place(r.Context(), target)
		if err != nil {
			return nil, r, err
		}

		if placed != target {
			target = placed
			q.Set("target", target)
			u := *r.URL
			u.RawQuery = q.Encode()
			r = r.WithContext(r.Context())
			r.URL = &u
		}
	}

	if target == "" || target == cf.dir.Self().Name {
		return nil, r, nil
	}

	m, err := cf.member(r.Context(), 0, target)
	return m, r, err
}

// operationMember is the member running operation id when it is not this one: known
// from the relayed request that created it, else (for a trusted caller) asked of every
// member. nil: here (or nowhere: the local handler answers 404). An untrusted caller
// (an operation websocket's, with its secret) never makes the members be asked: any id
// it sends would otherwise cost a request to every member (issue 16 review).
func (d *Daemon) operationMember(ctx context.Context, id string, trusted bool) *forward.Member {
	_, err := d.ops.Get(id)
	if err == nil || strings.HasPrefix(id, standInPrefix) {
		return nil // here, or a join token's stand-in: the database's, any member answers
	}

	cf := d.forward
	m, ok := cf.ops.Lookup(id)
	if ok {
		return &m
	}

	if !trusted {
		return nil
	}

	ms, err := cf.others(ctx)
	if err != nil {
		return nil
	}

	for _, a := range cf.fwd.Get(ctx, ms, "/1.0/operations/"+url.PathEscape(id), nil, forward.CallerAdmin, forward.FanoutTimeout) {
		if a.Err == nil {
			cf.ops.Add(id, a.Member)
			return &a.Member
		}
	}

	return nil
}

// operationsOfMembers adds the other members' operations to a list of operations
// (urls, or objs with recursion), asking each member for its own within the fan-out
// deadline, and remembers where each is so that its URLs reach it through this member.
// A member that does not answer is left out: its operations cannot be reached either.
func (d *Daemon) operationsOfMembers(r *http.Request, urls map[string][]string, objs map[string][]api.Operation) {
	cf := d.forward
	if cf == nil || forward.IsForwarded(r) {
		return
	}

	ms, err := cf.others(r.Context())
	if err != nil {
		d.log.Warn("listing operations of members", "err", err)
		return
	}

	for _, a := range cf.fwd.Get(r.Context(), ms, r.URL.Path, r.URL.Query(), cf.callerHeader(callerOf(r)), forward.FanoutTimeout) {
		if a.Err == nil && recursion(r) >= 1 {
			var more map[string][]api.Operation
			err = json.Unmarshal(a.Metadata, &more)
			for status, ops := range more {
				for _, op := range ops {
					if strings.HasPrefix(op.ID, standInPrefix) {
						continue // a join token's stand-in: every member lists it
					}

					cf.ops.Add(op.ID, a.Member)
					objs[status] = append(objs[status], op)
				}
			}
		} else if a.Err == nil {
			var more map[string][]string
			err = json.Unmarshal(a.Metadata, &more)
			for status, us := range more {
				for _, u := range us {
					id, ok := forward.OperationID(u)
					if !ok || strings.HasPrefix(id, standInPrefix) {
						continue // a join token's stand-in: every member lists it
					}

					cf.ops.Add(id, a.Member)
					urls[status] = append(urls[status], u)
				}
			}
		} else {
			err = a.Err
		}

		if err != nil {
			d.log.Warn("listing operations of member", "member", a.Member.Name, "err", err)
		}
	}
}

// others are the members but this one.
func (cf *clusterForward) others(ctx context.Context) ([]forward.Member, error) {
	ms, err := cf.dir.Members(ctx)
	if err != nil {
		return nil, err
	}

	self := cf.dir.Self().ID
	out := ms[:0:0]
	for _, m := range ms {
		if m.ID != self {
			out = append(out, m)
		}
	}

	return out, nil
}

// instancesAcrossMembers narrows list (every instance of the DB, rendered here) to
// this member's, asks every other member for its own (the same request, relayed), and
// returns the narrowed list with the instances of members that did not answer added
// back with status Error and their location, as LXD lists them, plus the answers of
// those that did, and as fallback this member's rows of the answering members'
// instances (for mergedInstanceList). Each member answers within forward.FanoutTimeout,
// so the list comes in that time even with a member down. A relayed list is this
// member's only.
func (d *Daemon) instancesAcrossMembers(r *http.Request, list []api.InstanceFull) (out []api.InstanceFull, answers []forward.Answer, fallback []api.InstanceFull, err error) {
	cf := d.forward
	if cf == nil {
		return list, nil, nil, nil
	}

	ctx := r.Context()
	var owners map[string]int64
	err = d.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		owners, err = tx.InstanceMembers(ctx)
		return err
	})
	if err != nil {
		return nil, nil, nil, err
	}

	ms, err := cf.dir.Members(ctx)
	if err != nil {
		return nil, nil, nil, err
	}

	self := cf.dir.Self()
	names := map[int64]string{}
	var others []forward.Member
	for _, m := range ms {
		names[m.ID] = m.Name
		if m.ID != self.ID {
			others = append(others, m)
		}
	}

	relayed := forward.IsForwarded(r)
	answered := map[int64]bool{}
	if !relayed && len(others) > 0 {
		for _, a := range cf.fwd.Get(ctx, others, r.URL.Path, r.URL.Query(), cf.callerHeader(callerOf(r)), forward.FanoutTimeout) {
			if a.Err != nil {
				d.log.Warn("listing instances of member", "member", a.Member.Name, "err", a.Err)
				continue
			}

			answered[a.Member.ID] = true
			answers = append(answers, a)
		}
	}

	out = make([]api.InstanceFull, 0, len(list))
	for _, inst := range list {
		owner, ok := owners[project.Key(inst.Project, inst.Name)]
		switch {
		case !ok || owner == self.ID:
			inst.Location = self.Name
		case relayed:
			continue
		case answered[owner]:
			// Its owner's answer has it, unless it moved between members while the
			// members read their rows, each at its own moment: then this row stands in.
			inst.Location = names[owner]
			fallback = append(fallback, inst)
			continue
		default:
			inst.Location = names[owner]
			inst.Status, inst.StatusCode = api.Error.String(), api.Error
			if inst.State != nil {
				inst.State = &api.InstanceState{Status: api.Error.String(), StatusCode: api.Error}
			}
		}

		out = append(out, inst)
	}

	return out, answers, fallback, nil
}

// mergedInstanceList is the answer to a list of recursion rec: this member's part
// (mine) and the members' answers, each instance once, sorted as one member's list is
// (by instance key), with fallback's rows for the instances no answer had. Once each:
// an instance moving between members is in the answers of both, or of neither, when
// they read their rows on either side of the move's commit. The members' objects are
// passed on as they sent them, not decoded and encoded again: that would cost more than
// the rest of the list.
func mergedInstanceList(rec int, answers []forward.Answer, mine, fallback listPart) response.Response {
	type item struct {
		key string
		raw json.RawMessage
	}

	var items []item
	seen := map[string]bool{}
	add := func(key string, raw json.RawMessage) {
		if !seen[key] {
			seen[key] = true
			items = append(items, item{key, raw})
		}
	}

	addPart := func(p listPart) error {
		var errs []error
		encode := func(key string, v any) {
			raw, err := json.Marshal(v)
			errs = append(errs, err)
			add(key, raw)
		}

		switch {
		case rec >= 2:
			for i := range p.full {
				encode(project.Key(p.full[i].Project, p.full[i].Name), &p.full[i])
			}
		case rec == 1:
			for i := range p.objs {
				encode(project.Key(p.objs[i].Project, p.objs[i].Name), &p.objs[i])
			}
		default:
			for _, u := range p.names {
				encode(urlKey(u), u)
			}
		}

		return errors.Join(errs...)
	}

	err := addPart(mine)
	if err != nil {
		return response.SmartError(err)
	}

	for _, a := range answers {
		var raws []json.RawMessage
		err := json.Unmarshal(a.Metadata, &raws)
		if err != nil {
			return response.SmartError(fmt.Errorf("reading the instances of member %s: %w", a.Member, err))
		}

		for _, raw := range raws {
			var key string
			if rec == 0 {
				var u string
				err = json.Unmarshal(raw, &u)
				key = urlKey(u)
			} else {
				var id struct{ Name, Project string }
				err = json.Unmarshal(raw, &id)
				key = project.Key(id.Project, id.Name)
			}

			if err != nil {
				return response.SmartError(fmt.Errorf("reading the instances of member %s: %w", a.Member, err))
			}

			add(key, raw)
		}
	}

	err = addPart(fallback)
	if err != nil {
		return response.SmartError(err)
	}

	sort.SliceStable(items, func(i, j int) bool { return items[i].key < items[j].key })
	// One JSON array of the items as they are (the encoder checks it once).
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i := range items {
		if i > 0 {
			buf.WriteByte(',')
		}

		buf.Write(items[i].raw)
	}

	buf.WriteByte(']')
	return response.SyncResponse(true, json.RawMessage(buf.Bytes()))
}

// urlKey is the instance key of a list URL (/1.0/instances/NAME[?project=P]).
func urlKey(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}

	i := strings.LastIndex(p.Path, "/")
	return project.Key(p.Query().Get("project"), p.Path[i+1:])
}

// imageFetcher brings an image's file from another member (imagestore.Fetcher).
type imageFetcher struct {
	d  *Daemon
	cf *clusterForward
}

// FetchImage asks the other members in turn for the export of fp, in a project whose
// image set has it.
func (f imageFetcher) FetchImage(ctx context.Context, fp string) (io.ReadCloser, string, error) {
	proj := ""
	err := f.d.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		imgs, err := tx.GetImages(ctx)
		for _, img := range imgs {
			if img.Fingerprint == fp {
				proj = img.Project
				break
			}
		}

		return err
	})
	if err != nil {
		return nil, "", err
	}

	ms, err := f.cf.dir.Members(ctx)
	if err != nil {
		return nil, "", err
	}

	start := time.Now()
	body, ctype, from, err := f.cf.fwd.FetchImage(ctx, ms, proj, fp)
	if err != nil {
		return nil, "", err
	}

	f.d.log.Info("fetching image from member", "fingerprint", fp[:12], "member", from.Name, "answered_in", time.Since(start))
	return body, ctype, nil
}

// clusterDirectory is the cluster service as forwarding sees it.
type clusterDirectory struct{ s *cluster.Service }

func forwardMember(m cluster.Member) forward.Member {
	return forward.Member{ID: m.ID, Name: m.Name, Address: m.Address, Online: m.Online}
}

func (c clusterDirectory) Self() forward.Member { return forwardMember(c.s.Self()) }

func (c clusterDirectory) Members(ctx context.Context) ([]forward.Member, error) {
	ms, err := c.s.Members(ctx)
	if err != nil {
		return nil, err
	}

	out := make([]forward.Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, forwardMember(m))
	}

	return out, nil
}

func (c clusterDirectory) ClientTLS() *tls.Config { return c.s.ClientTLS() }

func (c clusterDirectory) IsMember(caller trust.Caller) bool { return caller.Member }
