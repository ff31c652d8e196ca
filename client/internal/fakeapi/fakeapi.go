// Package fakeapi is an in-memory imitation of berthd's REST API on a unix
// socket, for unit tests of the client and the CLI. It mimics the envelope,
// operation and event shapes of docs/lxd-api.md; it runs no containers.
package fakeapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/shared/api"
)

// Request is one request the server received.
type Request struct {
	Method string
	Path   string // escaped path plus query
	Header http.Header
	Body   []byte
}

// Server is the fake daemon. Fields may be changed before the first request.
type Server struct {
	Socket string

	// OpDelay is how long operations stay Running before they finish.
	OpDelay time.Duration
	// NoEvents makes /1.0/events answer 404, forcing clients to poll.
	NoEvents bool
	// FailStart, when set, makes every start action fail with this message.
	FailStart string
	// ExecFunc runs exec'd commands; nil means BuiltinExec.
	ExecFunc ExecFunc

	srv *httptest.Server

	mu        sync.Mutex
	requests  []Request
	instances map[string]*api.InstanceFull
	images    map[string]*api.Image
	aliases   map[string]*api.ImageAliasesEntry
	ops       map[string]*api.Operation
	listeners map[*websocket.Conn]*sync.Mutex
	nameSeq   int

	// Exec and console state (exec.go, console.go).
	wsOps       map[string]*wsOp
	controls    []api.InstanceExecControl
	consoleLog  []byte
	consoleBusy map[string]bool
}

// New starts a fake server on a socket in a temporary directory, stopped by
// t.Cleanup.
func New(t testing.TB) *Server {
	t.Helper()

	// Socket paths are limited to ~108 bytes; t.TempDir() can be longer.
	dir, err := makeShortTempDir()
	if err != nil {
		t.Fatalf("creating socket dir: %v", err)
	}

	t.Cleanup(func() { removeAll(dir) })

	s := &Server{
		Socket:    filepath.Join(dir, "unix.socket"),
		OpDelay:   20 * time.Millisecond,
		instances: map[string]*api.InstanceFull{},
		images:    map[string]*api.Image{},
		aliases:   map[string]*api.ImageAliasesEntry{},
		ops:       map[string]*api.Operation{},
		listeners: map[*websocket.Conn]*sync.Mutex{},
	}

	l, err := net.Listen("unix", s.Socket)
	if err != nil {
		t.Fatalf("listening on %s: %v", s.Socket, err)
	}

	s.srv = httptest.NewUnstartedServer(s.routes())
	s.srv.Listener = l
	s.srv.Start()
	t.Cleanup(s.Close)

	return s
}

// Close stops the server and drops event listeners.
func (s *Server) Close() {
	s.mu.Lock()
	for c := range s.listeners {
		_ = c.Close()
	}
	s.mu.Unlock()

	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()

	return append([]Request(nil), s.requests...)
}

// AddImage stores an image with the given fingerprint and aliases.
func (s *Server) AddImage(fp string, aliases ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()

	s.addImageLocked(fp, "img.tar.gz", 1<<20)
	for _, a := range aliases {
		s.aliases[a] = &api.ImageAliasesEntry{Name: a, Type: "container", ImageAliasesEntryPut: api.ImageAliasesEntryPut{Target: fp}}
		s.images[fp].Aliases = append(s.images[fp].Aliases, api.ImageAlias{Name: a})
	}
}

// AddInstance stores an instance in the given status ("Running", "Stopped", "Frozen").
func (s *Server) AddInstance(name, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()

	s.instances[name] = newInstance(name, nil, false)
	s.setStatusLocked(s.instances[name], status)
}

// Instance returns a copy of a stored instance.
func (s *Server) Instance(name string) (api.InstanceFull, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()

	inst, ok := s.instances[name]
	if !ok {
		return api.InstanceFull{}, false
	}

	return *inst, true
}

// Alias returns the target of an alias.
func (s *Server) Alias(name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()

	a, ok := s.aliases[name]
	if !ok {
		return "", false
	}

	return a.Target, true
}

func (s *Server) addImageLocked(fp, filename string, size int64) {
	now := time.Now().UTC()
	s.images[fp] = &api.Image{
		ImagePut:     api.ImagePut{Properties: map[string]string{"description": "Fake image " + fp[:4]}},
		Architecture: "x86_64",
		Filename:     filename,
		Fingerprint:  fp,
		Size:         size,
		Type:         "container",
		CreatedAt:    now,
		UploadedAt:   now,
		Aliases:      []api.ImageAlias{},
	}
}

func newInstance(name string, profiles []string, ephemeral bool) *api.InstanceFull {
	if profiles == nil {
		profiles = []string{"default"}
	}

	now := time.Now().UTC()

	return &api.InstanceFull{Instance: api.Instance{
		InstancePut: api.InstancePut{
			Architecture: "x86_64",
			Config:       map[string]string{},
			Devices:      map[string]map[string]string{},
			Profiles:     profiles,
			Ephemeral:    ephemeral,
		},
		CreatedAt:       now,
		ExpandedConfig:  map[string]string{},
		ExpandedDevices: map[string]map[string]string{"eth0": {"type": "nic"}},
		Name:            name,
		Location:        "none",
		Type:            "container",
		Project:         "default",
	}}
}

// setStatusLocked sets status and fills the state like berthd would.
func (s *Server) setStatusLocked(inst *api.InstanceFull, status string) {
	code := map[string]api.StatusCode{"Running": api.Running, "Stopped": api.Stopped, "Frozen": api.Frozen}[status]
	inst.Status = status
	inst.StatusCode = code
	inst.State = &api.InstanceState{Status: status, StatusCode: code, Disk: map[string]api.InstanceStateDisk{}}

	if code == api.Stopped {
		return
	}

	inst.State.Pid = 4242
	inst.State.Processes = 7
	inst.State.CPU.Usage = 3_500_000_000
	inst.State.Memory.Usage = 48 << 20
	inst.State.Network = map[string]api.InstanceStateNetwork{
		"eth0": {Type: "broadcast", State: "up", Hwaddr: "00:16:3e:00:00:01", HostName: "veth" + inst.Name, Mtu: 1500,
			Addresses: []api.InstanceStateNetworkAddress{
				{Family: "inet", Address: "10.0.3.5", Netmask: "24", Scope: "global"},
				{Family: "inet6", Address: "fd42::5", Netmask: "64", Scope: "global"},
				{Family: "inet6", Address: "fe80::1", Netmask: "64", Scope: "link"},
			}},
		"lo": {Type: "loopback", State: "up", Addresses: []api.InstanceStateNetworkAddress{
			{Family: "inet", Address: "127.0.0.1", Netmask: "8", Scope: "local"},
		}},
	}
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()

	mux.HandleFunc("GET /1.0", s.getServer)
	mux.HandleFunc("GET /1.0/events", s.getEvents)
	mux.HandleFunc("GET /1.0/operations/{id}", s.getOperation)
	mux.HandleFunc("GET /1.0/operations/{id}/wait", s.waitOperation)
	s.streamRoutes(mux)

	mux.HandleFunc("GET /1.0/instances", s.getInstances)
	mux.HandleFunc("POST /1.0/instances", s.postInstances)
	mux.HandleFunc("GET /1.0/instances/{name}", s.getInstance)
	mux.HandleFunc("DELETE /1.0/instances/{name}", s.deleteInstance)
	mux.HandleFunc("GET /1.0/instances/{name}/state", s.getInstanceState)
	mux.HandleFunc("PUT /1.0/instances/{name}/state", s.putInstanceState)

	mux.HandleFunc("GET /1.0/images", s.getImages)
	mux.HandleFunc("POST /1.0/images", s.postImages)
	mux.HandleFunc("GET /1.0/images/{fp}", s.getImage)
	mux.HandleFunc("DELETE /1.0/images/{fp}", s.deleteImage)
	mux.HandleFunc("GET /1.0/images/aliases", s.getAliases)
	mux.HandleFunc("POST /1.0/images/aliases", s.postAlias)
	mux.HandleFunc("GET /1.0/images/aliases/{name}", s.getAlias)
	mux.HandleFunc("DELETE /1.0/images/aliases/{name}", s.deleteAlias)

	mux.HandleFunc("GET /1.0/profiles", func(w http.ResponseWriter, _ *http.Request) {
		sync200(w, []api.Profile{{Name: "default", UsedBy: []string{}, ProfilePut: api.ProfilePut{
			Description: "Default Berth profile", Config: map[string]string{},
			Devices: map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "default"}},
		}}}, "")
	})
	mux.HandleFunc("GET /1.0/profiles/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != "default" {
			fail(w, 404, "Profile not found")
			return
		}

		sync200(w, api.Profile{Name: "default", UsedBy: []string{}, ProfilePut: api.ProfilePut{
			Description: "Default Berth profile", Config: map[string]string{}, Devices: map[string]map[string]string{},
		}}, `"p1"`)
	})
	mux.HandleFunc("GET /1.0/networks", func(w http.ResponseWriter, _ *http.Request) {
		sync200(w, []api.Network{
			{Name: "berthbr0", Type: "bridge", Managed: true, Status: "Created", UsedBy: []string{"/1.0/profiles/default"},
				NetworkPut: api.NetworkPut{Config: map[string]string{"ipv4.address": "10.0.3.1/24", "ipv6.address": "none"}}},
			{Name: "lo", Type: "loopback", Status: "Unknown", NetworkPut: api.NetworkPut{Config: map[string]string{}}},
		}, "")
	})
	mux.HandleFunc("GET /1.0/storage-pools", func(w http.ResponseWriter, _ *http.Request) {
		sync200(w, []api.StoragePool{{Name: "default", Driver: "dir", Status: "Created", UsedBy: []string{},
			StoragePoolPut: api.StoragePoolPut{Config: map[string]string{"source": "/var/lib/berth/storage-pools/default"}}}}, "")
	})
	mux.HandleFunc("GET /1.0/storage-pools/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != "default" {
			fail(w, 404, "Storage pool not found")
			return
		}

		sync200(w, api.StoragePool{Name: "default", Driver: "dir", Status: "Created"}, "")
	})

	mux.HandleFunc("GET /1.0/broken", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html>oops</html>")
	})

	return s.logRequests(mux)
}

func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := []byte{}
		if r.Body != nil && r.URL.Path != "/1.0/images" {
			body, _ = io.ReadAll(r.Body)
			r.Body = io.NopCloser(strings.NewReader(string(body)))
		}

		s.mu.Lock()
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: body})
		s.mu.Unlock()

		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func sync200(w http.ResponseWriter, metadata any, etag string) {
	if etag != "" {
		w.Header().Set("ETag", etag)
	}

	writeJSON(w, 200, map[string]any{"type": "sync", "status": "Success", "status_code": 200, "operation": "", "error_code": 0, "error": "", "metadata": metadata})
}

func fail(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{"type": "error", "status": "", "status_code": 0, "operation": "", "error_code": code, "error": msg, "metadata": nil})
}

func (s *Server) getServer(w http.ResponseWriter, _ *http.Request) {
	sync200(w, api.Server{
		APIExtensions: []string{"instances", "api_filtering", "container_full", "instance_get_full", "network", "storage"},
		APIStatus:     "stable", APIVersion: "1.0", Auth: "trusted", AuthMethods: []string{"tls"},
		Config: map[string]string{},
		Environment: api.ServerEnvironment{
			Architectures: []string{"x86_64"}, Server: "berth", ServerName: "fake", ServerVersion: "0.1.0-fake",
			Storage: "dir", Kernel: "Linux", KernelVersion: "6.18",
		},
	}, `"srv"`)
}

// startOp registers a Running operation and finishes it after OpDelay with
// the result of run (nil = Success). metadata may be filled by run.
func (s *Server) startOp(w http.ResponseWriter, desc string, resources map[string][]string, run func(op *api.Operation) error) {
	now := time.Now().UTC()
	op := &api.Operation{
		ID: uuid.NewString(), Class: api.OperationClassTask, Description: desc,
		CreatedAt: now, UpdatedAt: now, Status: api.Running.String(), StatusCode: api.Running,
		Resources: resources, Location: "none",
	}

	s.mu.Lock()
	s.ops[op.ID] = op
	snapshot := *op
	s.mu.Unlock()

	s.broadcastOp(snapshot)

	go func() {
		time.Sleep(s.OpDelay)

		s.mu.Lock()
		err := run(op)
		op.StatusCode = api.Success
		if err != nil {
			op.StatusCode = api.Failure
			op.Err = err.Error()
		}

		op.Status = op.StatusCode.String()
		op.UpdatedAt = time.Now().UTC()
		final := *op
		s.mu.Unlock()

		s.broadcastOp(final)
	}()

	w.Header().Set("Location", "/1.0/operations/"+op.ID)
	writeJSON(w, http.StatusAccepted, map[string]any{"type": "async", "status": "Operation created", "status_code": 100,
		"operation": "/1.0/operations/" + op.ID, "error_code": 0, "error": "", "metadata": snapshot})
}

func (s *Server) broadcastOp(op api.Operation) {
	md, _ := json.Marshal(op)
	ev, _ := json.Marshal(api.Event{Type: api.EventTypeOperation, Timestamp: time.Now().UTC(), Metadata: md, Location: "none", Project: "default"})

	s.mu.Lock()
	defer s.mu.Unlock()

	for c, wmu := range s.listeners {
		wmu.Lock()
		_ = c.WriteMessage(websocket.TextMessage, ev)
		wmu.Unlock()
	}
}

func (s *Server) getEvents(w http.ResponseWriter, r *http.Request) {
	if s.NoEvents {
		fail(w, 404, "not found")
		return
	}

	up := websocket.Upgrader{}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}

	s.mu.Lock()
	s.listeners[conn] = &sync.Mutex{}
	s.mu.Unlock()

	// Read until the client goes away, then forget the listener.
	for {
		_, _, err := conn.ReadMessage()
		if err != nil {
			break
		}
	}

	s.mu.Lock()
	delete(s.listeners, conn)
	s.mu.Unlock()
	_ = conn.Close()
}

// DropEventListeners closes every events websocket, as a crashing daemon would.
func (s *Server) DropEventListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()

	for c := range s.listeners {
		_ = c.Close()
	}
}

func (s *Server) getOperation(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	op, ok := s.ops[r.PathValue("id")]
	var cp api.Operation
	if ok {
		cp = *op
	}
	s.mu.Unlock()

	if !ok {
		fail(w, 404, "Operation not found")
		return
	}

	sync200(w, cp, "")
}

func (s *Server) waitOperation(w http.ResponseWriter, r *http.Request) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		op, ok := s.ops[r.PathValue("id")]
		var cp api.Operation
		if ok {
			cp = *op
		}
		s.mu.Unlock()

		if !ok {
			fail(w, 404, "Operation not found")
			return
		}

		if cp.StatusCode.IsFinal() || time.Now().After(deadline) {
			sync200(w, cp, "")
			return
		}

		time.Sleep(5 * time.Millisecond)
	}
}

func (s *Server) getInstances(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()

	switch r.URL.Query().Get("recursion") {
	case "2":
		out := []api.InstanceFull{}
		for _, inst := range s.instances {
			out = append(out, *inst)
		}

		sync200(w, out, "")
	case "1":
		out := []api.Instance{}
		for _, inst := range s.instances {
			out = append(out, inst.Instance)
		}

		sync200(w, out, "")
	default:
		out := []string{}
		for name := range s.instances {
			out = append(out, "/1.0/instances/"+name)
		}

		sync200(w, out, "")
	}
}

func (s *Server) postInstances(w http.ResponseWriter, r *http.Request) {
	req := api.InstancesPost{}
	err := json.NewDecoder(r.Body).Decode(&req)
	if err != nil {
		fail(w, 400, "Invalid request body: "+err.Error())
		return
	}

	s.mu.Lock()
	if req.Source.Type == "image" && s.images[req.Source.Fingerprint] == nil {
		s.mu.Unlock()
		fail(w, 404, "Image not found")
		return
	}

	name := req.Name
	if name == "" {
		s.nameSeq++
		name = fmt.Sprintf("happy-fox%d", s.nameSeq)
	}

	_, exists := s.instances[name]
	s.mu.Unlock()

	if exists {
		fail(w, 409, "Instance \""+name+"\" already exists")
		return
	}

	res := map[string][]string{"instances": {"/1.0/instances/" + name}, "containers": {"/1.0/instances/" + name}}
	s.startOp(w, "Creating instance", res, func(op *api.Operation) error {
		inst := newInstance(name, req.Profiles, req.Ephemeral)
		for k, v := range req.Config {
			inst.Config[k] = v
		}

		for k, v := range req.Devices {
			inst.Devices[k] = v
		}

		inst.Config["volatile.base_image"] = req.Source.Fingerprint
		s.instances[name] = inst
		s.setStatusLocked(inst, "Stopped")

		return nil
	})
}

func (s *Server) lookupInstance(w http.ResponseWriter, r *http.Request) (*api.InstanceFull, bool) {
	inst, ok := s.instances[r.PathValue("name")]
	if !ok {
		fail(w, 404, "Instance not found")
	}

	return inst, ok
}

func (s *Server) getInstance(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()

	inst, ok := s.lookupInstance(w, r)
	if !ok {
		return
	}

	if r.URL.Query().Get("recursion") == "1" {
		sync200(w, *inst, `"etag-`+inst.Name+`"`)
		return
	}

	sync200(w, inst.Instance, `"etag-`+inst.Name+`"`)
}

func (s *Server) getInstanceState(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()

	inst, ok := s.lookupInstance(w, r)
	if ok {
		sync200(w, inst.State, "")
	}
}

func (s *Server) putInstanceState(w http.ResponseWriter, r *http.Request) {
	req := api.InstanceStatePut{}
	err := json.NewDecoder(r.Body).Decode(&req)
	if err != nil {
		fail(w, 400, "Invalid request body")
		return
	}

	s.mu.Lock()
	inst, ok := s.lookupInstance(w, r)
	s.mu.Unlock()

	if !ok {
		return
	}

	name := inst.Name
	res := map[string][]string{"instances": {"/1.0/instances/" + name}}

	var run func(op *api.Operation) error
	switch req.Action {
	case "start":
		run = func(*api.Operation) error {
			if s.FailStart != "" {
				return fmt.Errorf("%s", s.FailStart)
			}

			if inst.StatusCode == api.Running {
				return fmt.Errorf("The instance is already running")
			}

			s.setStatusLocked(inst, "Running")

			return nil
		}
	case "stop":
		run = func(*api.Operation) error {
			if inst.StatusCode == api.Stopped {
				return fmt.Errorf("The instance is already stopped")
			}

			s.setStatusLocked(inst, "Stopped")
			if inst.Ephemeral {
				delete(s.instances, name)
			}

			return nil
		}
	case "restart":
		run = func(*api.Operation) error {
			s.setStatusLocked(inst, "Running")
			return nil
		}
	case "freeze":
		run = func(*api.Operation) error {
			s.setStatusLocked(inst, "Frozen")
			return nil
		}
	case "unfreeze":
		run = func(*api.Operation) error {
			s.setStatusLocked(inst, "Running")
			return nil
		}
	default:
		fail(w, 400, "Unknown action "+req.Action)
		return
	}

	s.startOp(w, "Updating instance state", res, run)
}

func (s *Server) deleteInstance(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	inst, ok := s.lookupInstance(w, r)
	running := ok && inst.StatusCode != api.Stopped
	s.mu.Unlock()

	if !ok {
		return
	}

	if running {
		fail(w, 400, "Instance is running")
		return
	}

	name := inst.Name
	s.startOp(w, "Deleting instance", map[string][]string{"instances": {"/1.0/instances/" + name}}, func(*api.Operation) error {
		delete(s.instances, name)
		return nil
	})
}

// findImageLocked resolves a fingerprint or unique prefix.
func (s *Server) findImageLocked(prefix string) *api.Image {
	var found *api.Image
	for fp, img := range s.images {
		if strings.HasPrefix(fp, prefix) {
			if found != nil {
				return nil
			}

			found = img
		}
	}

	return found
}

func (s *Server) getImages(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()

	out := []api.Image{}
	for _, img := range s.images {
		out = append(out, *img)
	}

	sync200(w, out, "")
}

func (s *Server) getImage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()

	img := s.findImageLocked(r.PathValue("fp"))
	if img == nil {
		fail(w, 404, "Image not found")
		return
	}

	sync200(w, *img, `"img"`)
}

func (s *Server) postImages(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		fail(w, 400, "reading upload: "+err.Error())
		return
	}

	fp := hex.EncodeToString(h.Sum(nil))
	filename := r.Header.Get("X-LXD-filename")

	s.startOp(w, "Downloading image", map[string][]string{"images": {"/1.0/images/" + fp}}, func(op *api.Operation) error {
		op.Metadata = map[string]any{"fingerprint": fp, "size": strconv.FormatInt(n, 10)}
		if s.images[fp] != nil {
			return fmt.Errorf("Image with same fingerprint already exists")
		}

		s.addImageLocked(fp, filename, n)

		return nil
	})
}

func (s *Server) deleteImage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	img := s.findImageLocked(r.PathValue("fp"))
	s.mu.Unlock()

	if img == nil {
		fail(w, 404, "Image not found")
		return
	}

	fp := img.Fingerprint
	s.startOp(w, "Deleting image", map[string][]string{"images": {"/1.0/images/" + fp}}, func(*api.Operation) error {
		delete(s.images, fp)
		for name, a := range s.aliases {
			if a.Target == fp {
				delete(s.aliases, name)
			}
		}

		return nil
	})
}

func (s *Server) getAliases(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()

	if r.URL.Query().Get("recursion") == "1" {
		out := []api.ImageAliasesEntry{}
		for _, a := range s.aliases {
			out = append(out, *a)
		}

		sync200(w, out, "")
		return
	}

	out := []string{}
	for name := range s.aliases {
		out = append(out, "/1.0/images/aliases/"+name)
	}

	sync200(w, out, "")
}

func (s *Server) getAlias(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()

	a, ok := s.aliases[r.PathValue("name")]
	if !ok {
		fail(w, 404, "Image alias not found")
		return
	}

	sync200(w, *a, `"alias"`)
}

func (s *Server) postAlias(w http.ResponseWriter, r *http.Request) {
	req := api.ImageAliasesPost{}
	err := json.NewDecoder(r.Body).Decode(&req)
	if err != nil {
		fail(w, 400, "Invalid request body")
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	if _, ok := s.aliases[req.Name]; ok {
		fail(w, 409, fmt.Sprintf("Alias %q already exists", req.Name))
		return
	}

	img := s.findImageLocked(req.Target)
	if img == nil {
		fail(w, 404, "Image not found")
		return
	}

	s.aliases[req.Name] = &api.ImageAliasesEntry{Name: req.Name, Type: "container",
		ImageAliasesEntryPut: api.ImageAliasesEntryPut{Target: img.Fingerprint, Description: req.Description}}
	img.Aliases = append(img.Aliases, api.ImageAlias{Name: req.Name})
	w.Header().Set("Location", "/1.0/images/aliases/"+req.Name)
	sync200(w, map[string]any{}, "")
}

func (s *Server) deleteAlias(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()

	name := r.PathValue("name")
	a, ok := s.aliases[name]
	if !ok {
		fail(w, 404, "Image alias not found")
		return
	}

	delete(s.aliases, name)
	if img := s.images[a.Target]; img != nil {
		kept := img.Aliases[:0]
		for _, al := range img.Aliases {
			if al.Name != name {
				kept = append(kept, al)
			}
		}

		img.Aliases = kept
	}

	sync200(w, map[string]any{}, "")
}
